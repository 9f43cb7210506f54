import BelfryConfig
import BelfrySchedule
import Foundation
import GRDB

/// A deployed trigger as listings show it: definition, activation, who changed it, last run.
public struct TriggerStatus: Sendable {
    public struct LastRun: Sendable, Hashable {
        public var id: Int64
        public var state: String
        /// The slot it ran for (nil for a run without one).
        public var slot: Instant?

        package init(id: Int64, state: String, slot: Instant?) { (self.id, self.state, self.slot) = (id, state, slot) }
    }

    public var task: String
    public var trigger: String
    /// Enough of the definition to compute slots; `BelfryDatabase.definition(task:trigger:)` has
    /// the rest (listings of 100,000 triggers need only this).
    public var schedule: TriggerSchedule
    public var active: Bool
    /// When it was last activated: the anchor of a fixed rate without `start_time`.
    public var activatedAt: Date?
    public var owner: String?
    public var updatedBy: String?
    public var updatedAt: Date
    public var lastRun: LastRun?

    package init(
        task: String, trigger: String, schedule: TriggerSchedule, active: Bool, activatedAt: Date?, owner: String?, updatedBy: String?,
        updatedAt: Date, lastRun: LastRun?
    ) {
        (self.task, self.trigger, self.schedule, self.active, self.activatedAt) = (task, trigger, schedule, active, activatedAt)
        (self.owner, self.updatedBy, self.updatedAt, self.lastRun) = (owner, updatedBy, updatedAt, lastRun)
    }

    /// What places this trigger's `H` items.
    public var hashKey: String { TriggerSchedule.hashKey(task: task, trigger: trigger) }

    /// The schedule as it runs: a cron expression's `H` items resolved (`H * * * *` → `4 * * * *`).
    public var resolvedSchedule: String {
        guard schedule.isHashed, case .cron(let expression, _, _, _) = schedule,
            let parsed = try? CronExpression(parsing: expression, hashKey: hashKey)
        else { return schedule.text }
        return parsed.resolved
    }

    /// The slots of this trigger, anchored at its last activation.
    public func slots(zones: TimeZoneDatabase = .system) throws -> any SlotSchedule {
        let anchor = Instant(secondsSinceEpoch: Int64((activatedAt ?? updatedAt).timeIntervalSince1970.rounded(.down)))
        return try schedule.slots(activatedAt: anchor, hashKey: hashKey, zones: zones)
    }

    /// The next slot after `now` of each trigger (nil for inactive ones). Cron schedules are
    /// parsed once per distinct expression, zone and policy: large installations repeat them.
    public static func nextSlots(of statuses: [TriggerStatus], after now: Instant, zones: TimeZoneDatabase = .system) -> [Instant?] {
        var cronSchedules: [TriggerSchedule: CronSchedule] = [:]
        return statuses.map { status in
            guard status.active else { return nil }
            guard case .cron(let expression, let zone, let skipped, let repeated) = status.schedule else {
                return status.nextSlot(after: now, zones: zones)
            }
            let hashed = status.schedule.isHashed  // its slots are its own
            if !hashed, let known = cronSchedules[status.schedule] { return known.nextSlot(after: now) }
            guard let rules = try? zones.rules(for: zone),
                let schedule = try? CronSchedule(parsing: expression, zone: rules, dst: DSTPolicy(skipped: skipped, repeated: repeated),
                                                 hashKey: status.hashKey)
            else { return nil }
            if !hashed { cronSchedules[status.schedule] = schedule }
            return schedule.nextSlot(after: now)
        }
    }

    /// The next slot after `now` if the trigger is active, else nil.
    public func nextSlot(after now: Instant, zones: TimeZoneDatabase = .system) -> Instant? {
        guard active else { return nil }
        return (try? slots(zones: zones))?.nextSlot(after: now)
    }
}

extension BelfryDatabase {
    private static let statusQuery = """
        SELECT t.name, tr.name, NULL, tr.active, tr.activated_at, tr.owner, tr.updated_by, tr.updated_at,
               r.id, r.state, r.slot, tr.kind, tr.schedule, tr.timezone, tr.dst, tr.interval_seconds, tr.start_time
        FROM "trigger" tr
        JOIN task t ON t.id = tr.task_id
        LEFT JOIN run r ON r.id = (
          SELECT id FROM run WHERE run.task = t.name AND run."trigger" = tr.name ORDER BY id DESC LIMIT 1)
        """

    /// Every deployed trigger (of one task, when given), by task and trigger name.
    public func triggers(task: String? = nil, limit: Int? = nil) throws -> [TriggerStatus] {
        try pool.read { db in
            let sql = Self.statusQuery + (task == nil ? "" : " WHERE t.name = ?") + " ORDER BY t.name, tr.name"
                + (limit.map { " LIMIT \(max(0, $0))" } ?? "")
            let rows = try Row.fetchCursor(db, sql: sql, arguments: task.map { [$0] } ?? [])
            var statuses: [TriggerStatus] = []
            while let row = try rows.next() { statuses.append(try Self.status(row)) }
            return statuses
        }
    }

    /// One trigger, or `StoreError.unknownTrigger` with the closest names.
    public func trigger(task: String, name: String) throws -> TriggerStatus {
        try pool.read { db in try Self.fetch(db, task: task, name: name) }
    }

    /// The whole definition of a deployed trigger.
    public func definition(task: String, trigger name: String) throws -> TriggerDefinition {
        let json = try pool.read { db in
            _ = try Self.fetch(db, task: task, name: name)
            return try Data.fetchOne(db, sql: """
                SELECT tr.definition FROM "trigger" tr JOIN task t ON t.id = tr.task_id WHERE t.name = ? AND tr.name = ?
                """, arguments: [task, name])
        }
        return try JSONDecoder().decode(TriggerDefinition.self, from: json ?? Data())
    }

    /// Activates or deactivates a trigger, recording who and when. Activation re-anchors a fixed
    /// rate without `start_time` (SPEC §1.3).
    @discardableResult
    public func setActive(_ active: Bool, task: String, name: String, by user: String, now: Date = Date()) throws -> TriggerStatus {
        let at = milliseconds(now)
        return try pool.write { db in
            _ = try Self.fetch(db, task: task, name: name)
            try db.execute(sql: """
                UPDATE "trigger" SET active = ?, updated_by = ?, updated_at = ?,
                  activated_at = CASE WHEN ? THEN ? ELSE activated_at END
                WHERE name = ? AND task_id = (SELECT id FROM task WHERE name = ?)
                """, arguments: [active, user, at, active, at, name, task])
            return try Self.fetch(db, task: task, name: name)
        }
    }

    /// Deletes a deployed trigger (its run history stays). A later deploy that still defines it
    /// adds it again.
    public func deleteTrigger(task: String, name: String) throws {
        try pool.write { db in
            _ = try Self.fetch(db, task: task, name: name)
            try db.execute(sql: """
                DELETE FROM "trigger" WHERE name = ? AND task_id = (SELECT id FROM task WHERE name = ?)
                """, arguments: [name, task])
            // The file no longer matches the database: the next deploy reads it and restores the trigger.
            try db.execute(sql: "UPDATE environment SET source_hash = '' WHERE name = (SELECT environment FROM task WHERE name = ?)",
                           arguments: [task])
        }
    }

    private static func fetch(_ db: Database, task: String, name: String) throws -> TriggerStatus {
        if let row = try Row.fetchOne(db, sql: statusQuery + " WHERE t.name = ? AND tr.name = ?", arguments: [task, name]) {
            return try status(row)
        }
        let known = try String.fetchAll(db, sql: """
            SELECT t.name || ' ' || tr.name FROM "trigger" tr JOIN task t ON t.id = tr.task_id
            """)
        let wanted = "\(task) \(name)"
        let suggestions = Suggestions.nearest(to: wanted, in: known).map { "\"\($0)\"" }
        throw StoreError.unknownTrigger(task: task, trigger: name, suggestions: suggestions)
    }

    private static func status(_ row: Row) throws -> TriggerStatus {
        let runID: Int64? = row[8]
        return TriggerStatus(
            task: row[0], trigger: row[1],
            schedule: try ScheduleColumns(kind: row[11], text: row[12], timezone: row[13], dst: row[14], interval: row[15], start: row[16]).schedule,
            active: row[3], activatedAt: (row[4] as Int64?).map(date), owner: row[5], updatedBy: row[6],
            updatedAt: date(row[7]),
            lastRun: runID.map { TriggerStatus.LastRun(id: $0, state: row[9], slot: (row[10] as Int64?).map(Instant.init(secondsSinceEpoch:))) })
    }
}

/// Milliseconds since the epoch, as the database stores instants of events.
package func date(_ milliseconds: Int64) -> Date {
    Date(timeIntervalSince1970: Double(milliseconds) / 1000)
}

/// A trigger's schedule as columns of the trigger table, so listings need not decode definitions.
package struct ScheduleColumns: Hashable {
    package var kind: String
    package var text: String
    package var timezone: String
    package var dst: String?
    package var interval: Int64?
    package var start: Int64?

    package init(kind: String, text: String, timezone: String, dst: String?, interval: Int64?, start: Int64?) {
        (self.kind, self.text, self.timezone, self.dst, self.interval, self.start) = (kind, text, timezone, dst, interval, start)
    }

    package init(_ schedule: TriggerSchedule) {
        kind = schedule.kind
        text = schedule.text
        timezone = schedule.timezone
        switch schedule {
        case .cron(_, _, let skipped, let repeated): dst = "\(skipped.rawValue) \(repeated.rawValue)"
        case .every(let seconds, let startTime, _): (interval, start) = (seconds, startTime?.secondsSinceEpoch)
        }
    }

    var arguments: StatementArguments { [kind, text, timezone, dst, interval, start] }

    package var schedule: TriggerSchedule {
        get throws {
            if kind == "every", let interval {
                return .every(intervalSeconds: interval, startTime: start.map(Instant.init(secondsSinceEpoch:)), timezone: timezone)
            }
            let parts = (dst ?? "").split(separator: " ").map(String.init)
            guard kind == "cron", parts.count == 2, let skipped = DSTPolicy.Skipped(rawValue: parts[0]),
                let repeated = DSTPolicy.Repeated(rawValue: parts[1])
            else { throw StoreError.unreadable("a trigger row with an unreadable schedule (\(kind) \(text))") }
            return .cron(expression: text, timezone: timezone, skipped: skipped, repeated: repeated)
        }
    }
}

extension BelfryDatabase {
    /// A deployed task's definition (without its triggers), or an error naming the closest tasks.
    public func task(named name: String) throws -> TaskDefinition {
        try pool.read { db in
            if let json = try Data.fetchOne(db, sql: "SELECT definition FROM task WHERE name = ?", arguments: [name]) {
                return try JSONDecoder().decode(TaskDefinition.self, from: json)
            }
            let known = try String.fetchAll(db, sql: "SELECT name FROM task")
            let suggestions = Suggestions.nearest(to: name, in: known)
            throw StoreError.unknownTask(task: name, suggestions: suggestions)
        }
    }
}
