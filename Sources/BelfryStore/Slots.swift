import BelfryConfig
import BelfrySchedule
import Foundation
import GRDB

/// What becomes of a slot that came due.
public enum SlotOutcome: Hashable, Sendable {
    /// Run it (`scheduled` on time, `catchUp` for a missed slot).
    case run(RunOrigin)
    /// Recorded, not run: `missed` (downtime, deadline) or `skipped` (overlap, circuit).
    case notRun(RunState, reason: String)
}

/// An active trigger as the scheduler needs it: what decides its slots, not its whole
/// definition (100,000 of those would cost seconds to decode and hundreds of megabytes to hold;
/// `launchDefinitions` reads them when a run starts).
public struct ScheduledTrigger: Sendable {
    public var id: Int64
    /// `ENV.TASK`.
    public var task: String
    public var name: String
    public var schedule: TriggerSchedule
    public var catchUp: CatchUpPolicy
    public var startingDeadlineMilliseconds: Int64?
    public var overlap: OverlapPolicy
    /// When it was last activated (the anchor of a fixed rate without start_time).
    public var activatedAt: Instant
    /// The last slot evaluated; nil for a trigger never evaluated.
    public var watermark: Instant?
    /// Changes whenever a deploy changes the task's or the trigger's definition.
    public var version: DefinitionVersion

    public struct DefinitionVersion: Hashable, Sendable {
        public var task: Int64
        public var trigger: Int64

        package init(task: Int64, trigger: Int64) { (self.task, self.trigger) = (task, trigger) }
    }

    package init(
        id: Int64, task: String, name: String, schedule: TriggerSchedule, catchUp: CatchUpPolicy, startingDeadlineMilliseconds: Int64?,
        overlap: OverlapPolicy, activatedAt: Instant, watermark: Instant?, version: DefinitionVersion
    ) {
        (self.id, self.task, self.name, self.schedule, self.catchUp) = (id, task, name, schedule, catchUp)
        (self.startingDeadlineMilliseconds, self.overlap, self.activatedAt, self.watermark, self.version) =
            (startingDeadlineMilliseconds, overlap, activatedAt, watermark, version)
    }

    /// Whether `other` schedules the same way (a reload keeps what is known of it).
    public func schedulesLike(_ other: ScheduledTrigger) -> Bool {
        version == other.version && activatedAt == other.activatedAt && schedule == other.schedule
    }
}

extension BelfryDatabase: Store {
    /// Names the database in messages and to jobs: its path.
    public var location: String { path }

    /// Every active trigger with its schedule, policies, anchor and watermark. Schedules are
    /// JSON fragments decoded once per distinct text (triggers share a handful of them).
    public func activeTriggers() throws -> [ScheduledTrigger] {
        try pool.read { db in
            let decoder = JSONDecoder()
            var schedules: [String: TriggerSchedule] = [:]
            var triggers: [ScheduledTrigger] = []
            let rows = try Row.fetchCursor(db, sql: """
                SELECT tr.id, t.name, tr.name, json_extract(tr.definition, '$.schedule'),
                  json_extract(tr.definition, '$.catchUp.mode'), json_extract(tr.definition, '$.catchUp.limit'),
                  json_extract(tr.definition, '$.startingDeadlineMilliseconds'), json_extract(tr.definition, '$.overlap'),
                  coalesce(tr.activated_at, tr.updated_at), w.last_slot, t.updated_at, tr.updated_at
                FROM "trigger" tr JOIN task t ON t.id = tr.task_id LEFT JOIN watermark w ON w.trigger_id = tr.id
                WHERE tr.active ORDER BY tr.id
                """)
            while let row = try rows.next() {
                let scheduleText: String = row[3]
                let schedule: TriggerSchedule
                if let known = schedules[scheduleText] {
                    schedule = known
                } else {
                    schedule = try decoder.decode(TriggerSchedule.self, from: Data(scheduleText.utf8))
                    schedules[scheduleText] = schedule
                }
                var catchUp = CatchUpPolicy()
                catchUp.mode = CatchUpPolicy.Mode(rawValue: row[4] ?? "") ?? catchUp.mode
                catchUp.limit = row[5] ?? catchUp.limit
                triggers.append(ScheduledTrigger(
                    id: row[0], task: row[1], name: row[2], schedule: schedule, catchUp: catchUp,
                    startingDeadlineMilliseconds: row[6], overlap: OverlapPolicy(rawValue: row[7] ?? "") ?? .allow,
                    activatedAt: Instant(secondsSinceEpoch: (row[8] as Int64) / 1000),
                    watermark: (row[9] as Int64?).map(Instant.init(secondsSinceEpoch:)),
                    version: .init(task: row[10], trigger: row[11])))
            }
            return triggers
        }
    }

    /// The definitions a run of the trigger starts with, as deployed now; nil when the trigger
    /// is gone.
    public func launchDefinitions(trigger id: Int64) throws -> LaunchDefinitions? {
        try pool.read { db in try Self.launchDefinitions(db, trigger: id) }
    }

    private static func launchDefinitions(_ db: Database, trigger id: Int64) throws -> LaunchDefinitions? {
        let row = try Row.fetchOne(
            db.cachedStatement(sql: #"SELECT t.definition, tr.definition FROM "trigger" tr JOIN task t ON t.id = tr.task_id WHERE tr.id = ?"#),
            arguments: [id])
        return row.map { LaunchDefinitions(task: $0[0], trigger: $0[1]) }
    }

    /// Records the outcome of each slot and advances each trigger's watermark to
    /// `evaluatedThrough`, in one transaction synced to disk, before anything runs. Slots at or
    /// before a stored watermark, and slots that already have a run (another daemon, a restart),
    /// are left alone: each slot is recorded once. Returns, per claim, the runs to launch now.
    public func claimSlots(_ claims: [SlotClaim], evaluatedThrough watermark: Instant, at: Date) throws -> [[SlotLaunch]] {
        try pool.writeWithoutTransaction { db in
            // The database runs with synchronous = NORMAL (durable across crashes of the
            // process, not of the machine); a claim is synced so that after a power loss no slot
            // whose process started can be claimed again.
            try db.execute(sql: "PRAGMA synchronous = FULL")
            defer { try? db.execute(sql: "PRAGMA synchronous = NORMAL") }
            var result: [[SlotLaunch]] = []
            try db.inTransaction(.immediate) {
                let readWatermark = try db.cachedStatement(sql: "SELECT last_slot FROM watermark WHERE trigger_id = ?")
                let insert = try db.cachedStatement(sql: """
                    INSERT INTO run (task, "trigger", slot, origin, state, reason, queued_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (task, "trigger", slot) DO NOTHING
                    """)
                let advance = try db.cachedStatement(sql: """
                    INSERT INTO watermark (trigger_id, last_slot) VALUES (?, ?)
                    ON CONFLICT (trigger_id) DO UPDATE SET last_slot = max(last_slot, excluded.last_slot)
                    """)
                let now = milliseconds(at)
                for claim in claims {
                    let task = claim.trigger.task
                    let name = claim.trigger.name
                    let stored = try Int64.fetchOne(readWatermark, arguments: [claim.trigger.id])
                    var launches: [SlotLaunch] = []
                    var definitions: LaunchDefinitions?
                    for (slot, outcome) in claim.outcomes where stored.map({ slot.secondsSinceEpoch > $0 }) ?? true {
                        switch outcome {
                        case .run(let origin):
                            try insert.execute(arguments: [task, name, slot.secondsSinceEpoch, origin.rawValue, RunState.queued.rawValue, nil, now, nil])
                            guard db.changesCount == 1 else { continue }
                            let runID = db.lastInsertedRowID
                            if definitions == nil { definitions = try Self.launchDefinitions(db, trigger: claim.trigger.id) }
                            if let definitions {
                                launches.append(SlotLaunch(slot: slot, runID: runID, origin: origin, definitions: definitions))
                            } else {  // deleted by another process since the scheduler read it
                                try db.execute(sql: "UPDATE run SET state = 'failed', reason = 'its trigger is no longer deployed', finished_at = ? WHERE id = ?",
                                               arguments: [now, runID])
                                try Self.countFinishedRun(db, id: runID)
                            }
                        case .notRun(let state, let reason):
                            try insert.execute(arguments: [task, name, slot.secondsSinceEpoch, RunOrigin.scheduled.rawValue, state.rawValue, reason, now, now])
                        }
                    }
                    try advance.execute(arguments: [claim.trigger.id, watermark.secondsSinceEpoch])
                    result.append(launches)
                }
                return .commit
            }
            return result
        }
    }
}

extension BelfryDatabase {
    /// Concurrency per queue, as deployed.
    public func queueLimits() throws -> [String: Int] {
        try pool.read { db in
            try Dictionary(Row.fetchAll(db, sql: "SELECT name, concurrency FROM queue").map { ($0[0] as String, $0[1] as Int) },
                           uniquingKeysWith: { a, _ in a })
        }
    }

    /// At start-up: runs of triggers left `queued` or `running` were interrupted (SPEC §4). Each
    /// is a system retry, not counted against the user's retries: its unfinished attempt is
    /// closed as interrupted and the run goes back to `queued`, to be resumed. A run interrupted
    /// more than `maxSystemRetries` times is recorded failed instead.
    public func interruptedRuns(maxSystemRetries: Int = 3, at: Date) throws -> [InterruptedRun] {
        try pool.write { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT id, task, "trigger", slot, origin, attempts, system_retries FROM run
                WHERE state IN ('queued', 'running') AND slot IS NOT NULL AND "trigger" IS NOT NULL
                """)
            var resumable: [InterruptedRun] = []
            for row in rows {
                let id: Int64 = row[0]
                let orphan = try Int32.fetchOne(db, sql: "SELECT pid FROM attempt WHERE run_id = ? AND finished_at IS NULL AND pid IS NOT NULL", arguments: [id])
                try db.execute(sql: "UPDATE attempt SET finished_at = ? WHERE run_id = ? AND finished_at IS NULL", arguments: [milliseconds(at), id])
                if (row[6] as Int) >= maxSystemRetries {
                    try db.execute(sql: """
                        UPDATE run SET state = 'failed', reason = 'interrupted \(maxSystemRetries + 1) times (daemon stopped)', finished_at = ?
                        WHERE id = ?
                        """, arguments: [milliseconds(at), id])
                    try Self.countFinishedRun(db, id: id)
                    continue
                }
                try db.execute(sql: "UPDATE run SET state = 'queued', system_retries = system_retries + 1, reason = 'resumed after an interruption' WHERE id = ?",
                               arguments: [id])
                resumable.append(InterruptedRun(
                    id: id, task: row[1], trigger: row[2], slot: Instant(secondsSinceEpoch: row[3]),
                    origin: RunOrigin(rawValue: row[4]) ?? .scheduled, attempts: row[5], orphanPID: orphan))
            }
            return resumable
        }
    }
}
