import BelfryConfig
import BelfrySchedule
import BelfryStore
import Foundation
import NIOCore
import PostgresNIO

extension PostgresStore {
    /// Replaces the deployed definitions in one transaction, as `BelfryDatabase.deploy` does:
    /// new triggers start active iff `auto_activate`, existing ones keep their activation,
    /// triggers no longer defined go (their history stays). Rows are written in batches
    /// (`unnest`), not one statement each: a deploy of 100,000 triggers is a few statements.
    public func deploy(_ definitions: Definitions, owner: String, now: Date) async throws -> DeploySummary {
        let at = milliseconds(now)
        let deployedHashes = try await environmentHashes()
        let changedTasks = definitions.environments.filter { deployedHashes[$0.name] != $0.sourceHash }.flatMap(\.tasks)
        let encoded = Dictionary(uniqueKeysWithValues: zip(changedTasks.map(\.fullName), try BelfryDatabase.encode(changedTasks)))
        return try await transaction { connection in
            try await connection.query("LOCK TABLE task, \"trigger\" IN SHARE ROW EXCLUSIVE MODE", logger: self.logger)
            let deployed = try await self.deployed(connection)
            let plan = try DeployPlan(definitions, deployed: deployed, encoded: encoded)

            var environments = Columns(6)
            for environment in plan.environments {
                environments.add([environment.name, environment.description != nil, environment.description ?? "", environment.file,
                                  environment.sourceHash, at])
            }
            try await connection.query(environments.query("""
                INSERT INTO environment (name, description, file, source_hash, updated_at)
                SELECT n, CASE WHEN hd THEN d END, f, h, u
                FROM unnest($1::text[], $2::boolean[], $3::text[], $4::text[], $5::text[], $6::bigint[]) AS x(n, hd, d, f, h, u)
                ON CONFLICT (name) DO UPDATE SET description = excluded.description, file = excluded.file,
                  source_hash = excluded.source_hash, updated_at = excluded.updated_at
                """), logger: self.logger)
            var taskIDs = deployed.tasks.mapValues(\.id)
            if !plan.newTasks.isEmpty {
                var rows = Columns(4)
                for task in plan.newTasks { rows.add([task.name, task.environment, task.definition, at]) }
                for try await (id, name) in try await connection.query(rows.query("""
                    INSERT INTO task (name, environment, definition, updated_at)
                    SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bigint[]) RETURNING id, name
                    """), logger: self.logger).decode((Int64, String).self) { taskIDs[name] = id }
            }
            if !plan.changedTasks.isEmpty {
                var rows = Columns(4)
                for task in plan.changedTasks { rows.add([task.environment, task.definition, at, task.id]) }
                try await connection.query(rows.query("""
                    UPDATE task SET environment = x.e, definition = x.d, updated_at = x.u
                    FROM unnest($1::text[], $2::bytea[], $3::bigint[], $4::bigint[]) AS x(e, d, u, id) WHERE task.id = x.id
                    """), logger: self.logger)
            }
            if !plan.newTriggers.isEmpty {
                var rows = Columns(13)
                for trigger in plan.newTriggers {
                    rows.add([taskIDs[trigger.task]!, trigger.name] + Self.columns(trigger.columns)
                             + [trigger.definition, trigger.active, trigger.active ? at : Int64.min, owner, at])
                }
                try await connection.query(rows.query("""
                    INSERT INTO "trigger" (task_id, name, kind, schedule, timezone, dst, interval_seconds, start_time, definition, active,
                      activated_at, owner, updated_by, updated_at)
                    SELECT t, n, k, s, z, nullif(d, ''), nullif(i, \(Int64.min)), nullif(st, \(Int64.min)), def, a, nullif(aa, \(Int64.min)), o, o, u
                    FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[],
                      $9::bytea[], $10::boolean[], $11::bigint[], $12::text[], $13::bigint[]) AS x(t, n, k, s, z, d, i, st, def, a, aa, o, u)
                    """), logger: self.logger)
            }
            if !plan.changedTriggers.isEmpty {
                var rows = Columns(10)
                for trigger in plan.changedTriggers { rows.add(Self.columns(trigger.columns) + [trigger.definition, owner, at, trigger.id]) }
                try await connection.query(rows.query("""
                    UPDATE "trigger" SET kind = x.k, schedule = x.s, timezone = x.z, dst = nullif(x.d, ''), interval_seconds = nullif(x.i, \(Int64.min)),
                      start_time = nullif(x.st, \(Int64.min)), definition = x.def, owner = x.o, updated_by = x.o, updated_at = x.u
                    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bytea[], $8::text[], $9::bigint[],
                      $10::bigint[]) AS x(k, s, z, d, i, st, def, o, u, id)
                    WHERE "trigger".id = x.id
                    """), logger: self.logger)
            }
            if !plan.deletedTriggers.isEmpty {
                try await connection.query(#"DELETE FROM "trigger" WHERE id = ANY(\#(plan.deletedTriggers))"#, logger: self.logger)
            }
            if !plan.deletedTasks.isEmpty { try await connection.query("DELETE FROM task WHERE id = ANY(\(plan.deletedTasks))", logger: self.logger) }
            try await connection.query("DELETE FROM environment WHERE NOT (name = ANY(\(definitions.environments.map(\.name))))", logger: self.logger)
            try await connection.query("DELETE FROM queue", logger: self.logger)
            let queues = definitions.queues.sorted { $0.key < $1.key }
            try await connection.query("""
                INSERT INTO queue (name, concurrency) SELECT * FROM unnest(\(queues.map(\.key))::text[], \(queues.map { Int64($0.value) })::bigint[])
                """, logger: self.logger)
            let summary = plan.summary
            try await connection.query("""
                INSERT INTO deploy (owner, deployed_at, added, changed, deleted, unchanged)
                VALUES (\(owner), \(at), \(summary.added.count), \(summary.changed.count), \(summary.deleted.count), \(summary.unchanged))
                """, logger: self.logger)
            try await Self.definitionsChanged(connection, logger: self.logger)
            return summary
        }
    }

    public func deployPreview(_ definitions: Definitions) async throws -> DeploySummary {
        try await transaction { connection in try DeployPlan(definitions, deployed: await self.deployed(connection), encoded: [:]).summary }
    }

    private func deployed(_ connection: PostgresConnection) async throws -> DeployPlan.Deployed {
        var deployed = DeployPlan.Deployed()
        for try await (name, hash) in try await connection.query("SELECT name, source_hash FROM environment", logger: logger)
            .decode((String, String).self) { deployed.hashes[name] = hash }
        for try await (id, name, definition) in try await connection.query("SELECT id, name, definition FROM task", logger: logger)
            .decode((Int64, String, Data).self) { deployed.tasks[name] = (id, definition) }
        for try await (id, key, definition, active) in try await connection.query("""
            SELECT tr.id, t.name || ' ' || tr.name, tr.definition, tr.active FROM "trigger" tr JOIN task t ON t.id = tr.task_id
            """, logger: logger).decode((Int64, String, Data, Bool).self) { deployed.triggers[key] = (id, definition, active) }
        return deployed
    }

    /// A schedule's columns as `unnest` binds them: NULLs as sentinels (`''`, `Int64.min`).
    private static func columns(_ columns: ScheduleColumns) -> [any PostgresEncodable & Sendable] {
        [columns.kind, columns.text, columns.timezone, columns.dst ?? "", columns.interval ?? Int64.min, columns.start ?? Int64.min]
    }

    private func environmentHashes() async throws -> [String: String] {
        var hashes: [String: String] = [:]
        for row in try await query("SELECT name, source_hash FROM environment") {
            let (name, hash) = try row.decode((String, String).self)
            hashes[name] = hash
        }
        return hashes
    }

    /// When the deployed definitions came from exactly these files with these bytes, records
    /// the deploy and returns its summary without reading the files; nil: deploy them.
    public func deployedFingerprints() async throws -> [String: String] {
        try await transaction { connection in try await self.deployedFingerprints(connection) }
    }

    /// File → fingerprint of what is deployed; a file two environments came from has "".
    private func deployedFingerprints(_ connection: PostgresConnection) async throws -> [String: String] {
        var deployed: [String: String] = [:]
        for try await (file, hash) in try await connection.query("SELECT file, source_hash FROM environment", logger: logger).decode((String, String).self) {
            deployed[file] = deployed[file] == nil ? hash : ""
        }
        return deployed
    }

    public func deployUnchanged(fingerprints: [String: String], owner: String, now: Date) async throws -> DeploySummary? {
        try await transaction { connection in
            let deployed = try await self.deployedFingerprints(connection)
            guard !deployed.isEmpty, deployed == fingerprints else { return nil }
            var summary = DeploySummary()
            for try await (count, active) in try await connection.query(
                #"SELECT count(*), count(*) FILTER (WHERE active) FROM "trigger""#, logger: self.logger).decode((Int, Int).self) {
                (summary.unchanged, summary.active, summary.inactive) = (count, active, count - active)
            }
            try await connection.query("""
                INSERT INTO deploy (owner, deployed_at, added, changed, deleted, unchanged) VALUES (\(owner), \(milliseconds(now)), 0, 0, 0, \(summary.unchanged))
                """, logger: self.logger)
            return summary
        }
    }

    /// Tells every node that what is deployed or active changed (`changeCounter`).
    static func definitionsChanged(_ connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query("UPDATE definitions_version SET version = version + 1", logger: logger)
    }

    public func changeCounter() async throws -> Int {
        try await query("SELECT version FROM definitions_version").first?.decode(Int.self) ?? 0
    }

    private static let statusQuery = """
        SELECT t.name, tr.name, tr.active, tr.activated_at, tr.owner, tr.updated_by, tr.updated_at,
               r.id, r.state, r.slot, tr.kind, tr.schedule, tr.timezone, tr.dst, tr.interval_seconds, tr.start_time
        FROM "trigger" tr
        JOIN task t ON t.id = tr.task_id
        LEFT JOIN LATERAL (SELECT id, state, slot FROM run WHERE run.task = t.name AND run."trigger" = tr.name ORDER BY id DESC LIMIT 1) r ON true
        """

    public func triggers(task: String?, limit: Int?) async throws -> [TriggerStatus] {
        let limitClause = limit.map { " LIMIT \(max(0, $0))" } ?? ""
        let rows = if let task {
            try await query(PostgresQuery(unsafeSQL: Self.statusQuery + " WHERE t.name = $1 ORDER BY t.name, tr.name" + limitClause, binds: binds([task])))
        } else {
            try await query(PostgresQuery(unsafeSQL: Self.statusQuery + " ORDER BY t.name, tr.name" + limitClause))
        }
        return try rows.map(Self.status)
    }

    public func trigger(task: String, name: String) async throws -> TriggerStatus {
        let rows = try await query(PostgresQuery(unsafeSQL: Self.statusQuery + " WHERE t.name = $1 AND tr.name = $2", binds: binds([task, name])))
        if let row = rows.first { return try Self.status(row) }
        let known = try await query(#"SELECT t.name || ' ' || tr.name FROM "trigger" tr JOIN task t ON t.id = tr.task_id"#).map { try $0.decode(String.self) }
        let suggestions = Suggestions.nearest(to: "\(task) \(name)", in: known).map { "\"\($0)\"" }
        throw StoreError.unknownTrigger(task: task, trigger: name, suggestions: suggestions)
    }

    private static func status(_ row: PostgresRow) throws -> TriggerStatus {
        let all = try row.decode((String, String, Bool, Int64?, String?, String?, Int64, Int64?, String?, Int64?, String, String, String, String?, Int64?, Int64?).self)
        let schedule = try ScheduleColumns(kind: all.10, text: all.11, timezone: all.12, dst: all.13, interval: all.14, start: all.15).schedule
        let lastRun = all.7.map { TriggerStatus.LastRun(id: $0, state: all.8 ?? "", slot: all.9.map(Instant.init(secondsSinceEpoch:))) }
        return TriggerStatus(task: all.0, trigger: all.1, schedule: schedule, active: all.2, activatedAt: all.3.map(date), owner: all.4,
                             updatedBy: all.5, updatedAt: date(all.6), lastRun: lastRun)
    }

    public func definition(task: String, trigger name: String) async throws -> TriggerDefinition {
        _ = try await trigger(task: task, name: name)
        let rows = try await query(#"SELECT tr.definition FROM "trigger" tr JOIN task t ON t.id = tr.task_id WHERE t.name = \#(task) AND tr.name = \#(name)"#)
        return try JSONDecoder().decode(TriggerDefinition.self, from: rows.first?.decode(Data.self) ?? Data())
    }

    public func setActive(_ active: Bool, task: String, name: String, by user: String, now: Date) async throws -> TriggerStatus {
        let at = milliseconds(now)
        try await transaction { connection in
            let rows = try await connection.query("""
                UPDATE "trigger" SET active = \(active), updated_by = \(user), updated_at = \(at),
                  activated_at = CASE WHEN \(active) THEN \(at) ELSE activated_at END
                WHERE name = \(name) AND task_id = (SELECT id FROM task WHERE name = \(task)) RETURNING id
                """, logger: self.logger).collect()
            if !rows.isEmpty { try await Self.definitionsChanged(connection, logger: self.logger) }
        }
        return try await trigger(task: task, name: name)
    }

    public func deleteTrigger(task: String, name: String) async throws {
        _ = try await trigger(task: task, name: name)
        try await transaction { connection in
            try await connection.query(#"DELETE FROM "trigger" WHERE name = \#(name) AND task_id = (SELECT id FROM task WHERE name = \#(task))"#, logger: self.logger)
            // The file no longer matches the database: the next deploy reads it and restores the trigger.
            try await connection.query("UPDATE environment SET source_hash = '' WHERE name = (SELECT environment FROM task WHERE name = \(task))", logger: self.logger)
            try await Self.definitionsChanged(connection, logger: self.logger)
        }
    }

    public func task(named name: String) async throws -> TaskDefinition {
        if let row = try await query("SELECT definition FROM task WHERE name = \(name)").first {
            return try JSONDecoder().decode(TaskDefinition.self, from: row.decode(Data.self))
        }
        let known = try await query("SELECT name FROM task").map { try $0.decode(String.self) }
        throw StoreError.unknownTask(task: name, suggestions: Suggestions.nearest(to: name, in: known))
    }

    public func queueLimits() async throws -> [String: Int] {
        var limits: [String: Int] = [:]
        for row in try await query("SELECT name, concurrency FROM queue") {
            let (name, concurrency) = try row.decode((String, Int).self)
            limits[name] = concurrency
        }
        return limits
    }

    /// Every active trigger with its schedule (from the trigger's schedule columns), policies,
    /// anchor and watermark. Rows are decoded as they arrive: 100,000 rows collected first cost
    /// a hundred megabytes.
    public func activeTriggers() async throws -> [ScheduledTrigger] {
        try await query("""
            SELECT tr.id, t.name, tr.name, tr.kind, tr.schedule, tr.timezone, tr.dst, tr.interval_seconds, tr.start_time,
              tr.policy ->> 'catch_up', (tr.policy ->> 'catch_up_limit')::bigint, (tr.policy ->> 'starting_deadline')::bigint,
              tr.policy ->> 'overlap', coalesce(tr.activated_at, tr.updated_at), w.last_slot, t.updated_at, tr.updated_at
            FROM "trigger" tr JOIN task t ON t.id = tr.task_id LEFT JOIN watermark w ON w.trigger_id = tr.id
            WHERE tr.active ORDER BY tr.id
            """) { rows in
            var triggers: [ScheduledTrigger] = []
            var schedules: [ScheduleColumns: TriggerSchedule] = [:]
            for try await r in rows.decode(
                (Int64, String, String, String, String, String, String?, Int64?, Int64?, String?, Int?, Int64?, String?, Int64, Int64?, Int64, Int64).self) {
                let columns = ScheduleColumns(kind: r.3, text: r.4, timezone: r.5, dst: r.6, interval: r.7, start: r.8)
                let schedule: TriggerSchedule
                if let known = schedules[columns] {
                    schedule = known
                } else {
                    schedule = try columns.schedule
                    schedules[columns] = schedule
                }
                var catchUp = CatchUpPolicy()
                catchUp.mode = CatchUpPolicy.Mode(rawValue: r.9 ?? "") ?? catchUp.mode
                catchUp.limit = r.10 ?? catchUp.limit
                triggers.append(ScheduledTrigger(
                    id: r.0, task: r.1, name: r.2, schedule: schedule, catchUp: catchUp, startingDeadlineMilliseconds: r.11,
                    overlap: OverlapPolicy(rawValue: r.12 ?? "") ?? .allow, activatedAt: Instant(secondsSinceEpoch: r.13 / 1000),
                    watermark: r.14.map(Instant.init(secondsSinceEpoch:)), version: .init(task: r.15, trigger: r.16)))
            }
            return triggers
        }
    }

    public func launchDefinitions(trigger id: Int64) async throws -> LaunchDefinitions? {
        let rows = try await query(#"SELECT t.definition, tr.definition FROM "trigger" tr JOIN task t ON t.id = tr.task_id WHERE tr.id = \#(id)"#)
        return try rows.first.map { row in
            let (task, trigger) = try row.decode((Data, Data).self)
            return LaunchDefinitions(task: task, trigger: trigger)
        }
    }
}

/// Rows gathered column by column, bound as one array per column (`unnest($1::T[], ...)`).
struct Columns: Sendable {
    private var columns: [[any PostgresEncodable & Sendable]]

    init(_ count: Int) { columns = Array(repeating: [], count: count) }

    var isEmpty: Bool { columns[0].isEmpty }

    mutating func add(_ row: [any PostgresEncodable & Sendable]) {
        precondition(row.count == columns.count)
        for (index, value) in row.enumerated() { columns[index].append(value) }
    }

    /// `sql` with `$1`... bound to the columns in order.
    func query(_ sql: String) -> PostgresQuery {
        var bindings = PostgresBindings(capacity: columns.count)
        for column in columns {
            switch column.first {
            case is String: bindings.append(column.map { $0 as! String })
            case is Int64: bindings.append(column.map { $0 as! Int64 })
            case is Bool: bindings.append(column.map { $0 as! Bool })
            case is Data: bindings.append(column.map { ByteBuffer(bytes: $0 as! Data) })
            default: bindings.append([String]())
            }
        }
        return PostgresQuery(unsafeSQL: sql, binds: bindings)
    }
}

/// Binds text values in order, for queries whose SQL is put together.
func binds(_ values: [String]) -> PostgresBindings {
    var bindings = PostgresBindings(capacity: values.count)
    for value in values { bindings.append(value) }
    return bindings
}
