import BelfrySchedule
import BelfryStore
import Foundation
import Logging
import NIOCore
import PostgresNIO

extension PostgresStore {
    /// Claims the slots of every claim in one transaction that first checks this node's lease
    /// (in the database's clock): each slot's run, `missed` or `skipped` record is inserted under
    /// UNIQUE (task, trigger, slot), so when several nodes claim the same slot one insert wins
    /// and only its node launches. Watermarks advance in the same transaction. A trigger with
    /// `overlap: forbid` whose previous run is queued or running on any node gets `skipped`;
    /// one with `replace` asks the owners of its other runs to cancel them.
    public func claimSlots(_ claims: [SlotClaim], evaluatedThrough watermark: Instant, at: Date) async throws -> [[SlotLaunch]] {
        let me = nodeID
        let now = milliseconds(at)
        let order = claims.indices.sorted { claims[$0].trigger.id < claims[$1].trigger.id }  // one lock order on every node
        var input = Columns(8)
        for index in order {
            let claim = claims[index]
            for (slot, outcome) in claim.outcomes {
                let (origin, state, reason): (RunOrigin, RunState, String) = switch outcome {
                case .run(let origin): (origin, .queued, "")
                case .notRun(let state, let reason): (.scheduled, state, reason)
                }
                input.add([claim.trigger.id, claim.trigger.task, claim.trigger.name, slot.secondsSinceEpoch, origin.rawValue, state.rawValue, reason,
                           claim.trigger.overlap == .forbid])
            }
        }
        let inserted: [(id: Int64, task: String, trigger: String, slot: Int64, origin: String)]
        var definitions: [Int64: LaunchDefinitions] = [:]
        (inserted, definitions) = try await transaction { [input] connection in
            try await self.checkLease(connection)
            var inserted: [(id: Int64, task: String, trigger: String, slot: Int64, origin: String)] = []
            if !input.isEmpty {
                var query = input.query("""
                    WITH input AS (
                      SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::boolean[])
                        AS i(trigger_id, task, trig, slot, origin, state, reason, forbid)
                    ), fresh AS (
                      SELECT i.* FROM input i LEFT JOIN watermark w ON w.trigger_id = i.trigger_id
                      WHERE w.last_slot IS NULL OR i.slot > w.last_slot
                    ), decided AS (
                      SELECT f.task, f.trig, f.slot, f.origin, f.reason,
                        CASE WHEN f.state = 'queued' AND f.forbid AND EXISTS (
                          SELECT 1 FROM run r WHERE r.task = f.task AND r."trigger" = f.trig AND r.state IN ('queued', 'running'))
                        THEN 'skipped' ELSE f.state END AS state
                      FROM fresh f
                    )
                    INSERT INTO run (task, "trigger", slot, origin, state, reason, queued_at, finished_at, node_id)
                    SELECT task, trig, slot, CASE WHEN state = 'queued' THEN origin ELSE 'scheduled' END, state,
                      CASE WHEN state = 'skipped' AND reason = '' THEN 'overlap is forbid and the previous run is still running' ELSE nullif(reason, '') END,
                      $9, CASE WHEN state = 'queued' THEN NULL ELSE $9 END, CASE WHEN state = 'queued' THEN $10 END
                    FROM decided ORDER BY task, trig, slot
                    ON CONFLICT (task, "trigger", slot) DO NOTHING
                    RETURNING id, task, "trigger", slot, origin, state
                    """)
                query.binds.append(now)
                query.binds.append(me)
                for try await row in try await connection.query(query, logger: self.logger).decode((Int64, String, String, Int64, String, String).self)
                where row.5 == RunState.queued.rawValue {
                    inserted.append((row.0, row.1, row.2, row.3, row.4))
                }
            }
            let triggerIDs = order.map { claims[$0].trigger.id }
            try await connection.query("""
                INSERT INTO watermark (trigger_id, last_slot) SELECT id, \(watermark.secondsSinceEpoch) FROM "trigger" WHERE id = ANY(\(triggerIDs)) ORDER BY id
                ON CONFLICT (trigger_id) DO UPDATE SET last_slot = excluded.last_slot WHERE watermark.last_slot < excluded.last_slot
                """, logger: self.logger)
            var definitions: [Int64: LaunchDefinitions] = [:]
            let launching = Set(inserted.map { "\($0.task) \($0.trigger)" })
            let launchingIDs = claims.filter { launching.contains("\($0.trigger.task) \($0.trigger.name)") }.map(\.trigger.id)
            if !launchingIDs.isEmpty {
                for try await (id, task, trigger) in try await connection.query("""
                    SELECT tr.id, t.definition, tr.definition FROM "trigger" tr JOIN task t ON t.id = tr.task_id WHERE tr.id = ANY(\(launchingIDs))
                    """, logger: self.logger).decode((Int64, Data, Data).self) {
                    definitions[id] = LaunchDefinitions(task: task, trigger: trigger)
                }
                // overlap: replace: the other runs of the trigger, wherever they run, are cancelled by their owners.
                let replacing = claims.filter { $0.trigger.overlap == .replace && launching.contains("\($0.trigger.task) \($0.trigger.name)") }
                if !replacing.isEmpty {
                    try await connection.query("""
                        UPDATE run SET cancel_requested = true
                        FROM unnest(\(replacing.map(\.trigger.task))::text[], \(replacing.map(\.trigger.name))::text[]) AS x(task, trig)
                        WHERE run.task = x.task AND run."trigger" = x.trig AND run.state IN ('queued', 'running')
                          AND NOT (run.id = ANY(\(inserted.map(\.id))))
                        """, logger: self.logger)
                }
            }
            return (inserted, definitions)
        }
        var byTrigger: [String: [SlotLaunch]] = [:]
        var orphaned: [Int64] = []
        for run in inserted {
            let trigger = claims.first { $0.trigger.task == run.task && $0.trigger.name == run.trigger }?.trigger.id
            guard let trigger, let launchDefinitions = definitions[trigger] else {
                orphaned.append(run.id)
                continue
            }
            byTrigger["\(run.task) \(run.trigger)", default: []].append(SlotLaunch(
                slot: Instant(secondsSinceEpoch: run.slot), runID: run.id, origin: RunOrigin(rawValue: run.origin) ?? .scheduled,
                definitions: launchDefinitions))
        }
        for run in orphaned {  // deleted by another process since the scheduler read it
            try await finishRun(run, state: .failed, reason: "its trigger is no longer deployed", exitCode: nil, commandUsed: nil, at: at)
        }
        return claims.map { byTrigger["\($0.trigger.task) \($0.trigger.name)"]?.sorted { $0.slot < $1.slot } ?? [] }
    }

    /// A node's runs are resumed by whoever takes it over (`takeOverLostNodes`), this node
    /// included after a restart: at start there is nothing of its own to resume.
    public func interruptedRuns(maxSystemRetries: Int, at: Date) async throws -> [InterruptedRun] { [] }

    public func createRun(task: String, trigger: String?, slot: Instant?, origin: RunOrigin, inputs: String?, at: Date) async throws -> Int64 {
        let rows = try await query("""
            INSERT INTO run (task, "trigger", slot, origin, state, inputs, queued_at, node_id)
            VALUES (\(task), \(trigger), \(slot?.secondsSinceEpoch), \(origin.rawValue), 'queued', \(inputs), \(milliseconds(at)), \(nodeID))
            RETURNING id
            """)
        return try rows[0].decode(Int64.self)
    }

    public func recordRunNotRun(
        task: String, trigger: String?, slot: Instant?, origin: RunOrigin, state: RunState, reason: String, at: Date
    ) async throws -> Int64 {
        let rows = try await query("""
            INSERT INTO run (task, "trigger", slot, origin, state, reason, queued_at, finished_at)
            VALUES (\(task), \(trigger), \(slot?.secondsSinceEpoch), \(origin.rawValue), \(state.rawValue), \(reason), \(milliseconds(at)), \(milliseconds(at)))
            RETURNING id
            """)
        return try rows[0].decode(Int64.self)
    }

    /// The attempt is recorded and the run is `running` only while this process owns the run.
    /// Starts asked for at once go to the server together (see `Coalescer`).
    public func startAttempt(run: Int64, number: Int, pid: Int32?, logPath: String?, at: Date) async throws {
        let start = AttemptStart(run: run, number: Int64(number), pid: pid.map(Int64.init) ?? -1, logPath: logPath ?? "",
                                 at: milliseconds(at), node: nodeID ?? "")
        let owned = try await attemptStarts.submit("start", start) { batch in
            let name = self.node.withLock { $0.current?.name }
            let rows = try await self.query("""
                WITH item AS (
                  SELECT * FROM unnest(\(batch.map(\.run)), \(batch.map(\.number)), \(batch.map(\.pid)), \(batch.map(\.logPath)),
                                       \(batch.map(\.at)), \(batch.map(\.node))) AS i(run_id, number, pid, log_path, started_at, node_id)),
                owned AS (
                  UPDATE run SET state = 'running', attempts = i.number, started_at = coalesce(run.started_at, i.started_at), node_name = \(name)
                  FROM item i WHERE run.id = i.run_id AND run.node_id IS NOT DISTINCT FROM nullif(i.node_id, '')
                  RETURNING run.id, i.number, i.pid, i.log_path, i.started_at)
                INSERT INTO attempt (run_id, number, started_at, pid, log_path, node_name)
                SELECT id, number, started_at, nullif(pid, -1), nullif(log_path, ''), \(name) FROM owned
                ON CONFLICT (run_id, number) DO UPDATE SET started_at = excluded.started_at
                RETURNING run_id
                """, idempotent: true)
            let started = Set(try rows.map { try $0.decode(Int64.self) })
            return batch.map { started.contains($0.run) }
        }
        if !owned { throw refused(run, "the start of attempt \(number)") }
    }

    public func setAttemptProcess(run: Int64, number: Int, pid: Int32) async throws {
        let owned = try await attemptProcesses.submit("process", (run, number, pid, nodeID)) { batch in
            let rows = try await self.query("""
                UPDATE attempt SET pid = i.pid
                FROM unnest(\(batch.map(\.run)), \(batch.map { Int64($0.number) }), \(batch.map { Int64($0.pid) }), \(batch.map { $0.node ?? "" }))
                  AS i(run_id, number, pid, node_id)
                WHERE attempt.run_id = i.run_id AND attempt.number = i.number
                  AND EXISTS (SELECT 1 FROM run WHERE id = i.run_id AND node_id IS NOT DISTINCT FROM nullif(i.node_id, ''))
                RETURNING attempt.run_id
                """, idempotent: true)
            let set = Set(try rows.map { try $0.decode(Int64.self) })
            return batch.map { set.contains($0.run) }
        }
        if !owned { throw refused(run, "the process of attempt \(number)") }
    }

    public func finishAttempt(run: Int64, number: Int, exitCode: Int32?, signal: Int32?, timedOut: Bool, outputTail: Data, at: Date) async throws {
        let end = AttemptEnd(run: run, number: Int64(number), at: milliseconds(at), exitCode: exitCode.map(Int64.init), signal: signal.map(Int64.init),
                             timedOut: timedOut, outputTail: ByteBuffer(bytes: outputTail), node: nodeID ?? "")
        let owned = try await attemptEnds.submit("end", end) { batch in
            let rows = try await self.query("""
                UPDATE attempt SET finished_at = i.finished_at, exit_code = CASE WHEN i.exited THEN i.exit_code END,
                  signal = CASE WHEN i.signalled THEN i.signal END, timed_out = i.timed_out, output_tail = i.output_tail
                FROM unnest(\(batch.map(\.run)), \(batch.map(\.number)), \(batch.map(\.at)), \(batch.map { $0.exitCode ?? 0 }),
                            \(batch.map { $0.exitCode != nil }), \(batch.map { $0.signal ?? 0 }), \(batch.map { $0.signal != nil }),
                            \(batch.map(\.timedOut)), \(batch.map(\.outputTail)), \(batch.map(\.node)))
                  AS i(run_id, number, finished_at, exit_code, exited, signal, signalled, timed_out, output_tail, node_id)
                WHERE attempt.run_id = i.run_id AND attempt.number = i.number
                  AND EXISTS (SELECT 1 FROM run WHERE id = i.run_id AND node_id IS NOT DISTINCT FROM nullif(i.node_id, ''))
                RETURNING attempt.run_id
                """, idempotent: true)
            let ended = Set(try rows.map { try $0.decode(Int64.self) })
            return batch.map { ended.contains($0.run) }
        }
        if !owned { throw refused(run, "the end of attempt \(number)") }
    }

    /// The run's end (or its return to the queue), and its figures for `stats`, in one
    /// statement: the run's hour gains its counts and its duration's histogram entry. Only a
    /// queued or running run changes, so the statement runs again safely after a lost
    /// connection; a run found already in `state` (the first try committed) is done.
    public func finishRun(_ run: Int64, state: RunState, reason: String?, exitCode: Int32?, commandUsed: String?, at: Date) async throws {
        let end = RunEnd(run: run, state: state.rawValue, reason: reason, exitCode: exitCode.map(Int64.init), commandUsed: commandUsed,
                         finishedAt: state.isFinal ? milliseconds(at) : nil, counted: RunFigures.counts(state), succeeded: state == .succeeded,
                         node: nodeID ?? "")
        let changed = try await runEnds.submit("end", end) { batch in
            let rows = try await self.query("""
                WITH item AS (
                  SELECT * FROM unnest(\(batch.map(\.run)), \(batch.map(\.state)), \(batch.map { $0.reason ?? "" }), \(batch.map { $0.reason != nil }),
                                       \(batch.map { $0.exitCode ?? 0 }), \(batch.map { $0.exitCode != nil }), \(batch.map { $0.commandUsed ?? "" }),
                                       \(batch.map { $0.commandUsed != nil }), \(batch.map { $0.finishedAt ?? 0 }), \(batch.map { $0.finishedAt != nil }),
                                       \(batch.map(\.counted)), \(batch.map(\.succeeded)), \(batch.map(\.node)))
                    AS i(run_id, state, reason, has_reason, exit_code, has_exit_code, command_used, has_command_used, finished_at, has_finished_at,
                         counted, succeeded, node_id)
                ), r AS (
                  UPDATE run SET state = i.state, reason = CASE WHEN i.has_reason THEN i.reason END,
                    exit_code = CASE WHEN i.has_exit_code THEN i.exit_code END, command_used = CASE WHEN i.has_command_used THEN i.command_used END,
                    finished_at = CASE WHEN i.has_finished_at THEN i.finished_at END, cancel_requested = false
                  FROM item i
                  WHERE run.id = i.run_id AND run.node_id IS NOT DISTINCT FROM nullif(i.node_id, '') AND run.state IN ('queued', 'running')
                  RETURNING run.id, run.task, run.queued_at / 3600000 AS hour, run.attempts, run.finished_at - run.started_at AS duration,
                    i.counted, i.succeeded
                ), figures AS (
                  INSERT INTO run_stats (task, hour, runs, succeeded, attempts, retried, durations)
                  SELECT task, hour, count(*), count(*) FILTER (WHERE succeeded), sum(attempts), count(*) FILTER (WHERE attempts > 1),
                    coalesce(string_agg(belfry_duration_entry(greatest(duration, 0)), ''::bytea) FILTER (WHERE duration IS NOT NULL), ''::bytea)
                  FROM r WHERE counted GROUP BY task, hour
                  ON CONFLICT (task, hour) DO UPDATE SET runs = run_stats.runs + excluded.runs, succeeded = run_stats.succeeded + excluded.succeeded,
                    attempts = run_stats.attempts + excluded.attempts, retried = run_stats.retried + excluded.retried,
                    durations = run_stats.durations || excluded.durations
                )
                SELECT id FROM r
                """, idempotent: true)
            let ended = Set(try rows.map { try $0.decode(Int64.self) })
            return batch.map { ended.contains($0.run) }
        }
        guard !changed else { return }
        let done = try await query("""
            SELECT 1 FROM run WHERE id = \(run) AND node_id IS NOT DISTINCT FROM \(nodeID) AND state = \(state.rawValue)
            """)
        if done.isEmpty { throw refused(run, "its end (\(state.rawValue))") }
    }

    /// Adds figures to `run_stats`, one statement per task and hour: a histogram's entries are
    /// appended (`DurationHistogram` sums repeated buckets), and pruning compacts them.
    static func write(_ figures: RunFigures, _ connection: PostgresConnection, logger: Logger) async throws {
        for entry in figures.entries {
            try await connection.query("""
                INSERT INTO run_stats (task, hour, runs, succeeded, attempts, retried, durations)
                VALUES (\(entry.task), \(entry.hour), \(entry.runs), \(entry.succeeded), \(entry.attempts), \(entry.retried),
                  \(ByteBuffer(bytes: entry.durations.data)))
                ON CONFLICT (task, hour) DO UPDATE SET runs = run_stats.runs + excluded.runs, succeeded = run_stats.succeeded + excluded.succeeded,
                  attempts = run_stats.attempts + excluded.attempts, retried = run_stats.retried + excluded.retried,
                  durations = run_stats.durations || excluded.durations
                """, logger: logger)
        }
    }

    func refused(_ run: Int64, _ write: String) -> StoreError {
        logger.warning("stale write refused", metadata: ["run": "\(run)", "write": "\(write)"])
        return StoreError.notOwner(run: run, write: write)
    }

    private static let runColumns = """
        id, task, "trigger", slot, origin, state, reason, attempts, exit_code, queued_at, started_at, finished_at, command_used, node_name
        """

    public func runs(matching filter: RunFilter) async throws -> [RunRecord] {
        var conditions: [String] = []
        var values: [String] = []
        func bind(_ value: String) -> String { values.append(value); return "$\(values.count)" }
        if let task = filter.task { conditions.append("task = \(bind(task))") }
        if let trigger = filter.trigger { conditions.append("\"trigger\" = \(bind(trigger))") }
        if let state = filter.state { conditions.append("state = \(bind(state.rawValue))") }
        if let since = filter.since { conditions.append("queued_at >= \(bind(String(milliseconds(since))))::bigint") }
        if let before = filter.before { conditions.append("id < \(bind(String(before)))::bigint") }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let sql = "SELECT \(Self.runColumns) FROM run \(whereClause) ORDER BY id DESC LIMIT \(max(0, filter.limit))"
        return try await query(PostgresQuery(unsafeSQL: sql, binds: binds(values))).map(Self.runRecord)
    }

    public func lastSuccesses() async throws -> [String: Date] {
        var result: [String: Date] = [:]
        for row in try await query("""
            SELECT task, "trigger", max(finished_at) FROM run WHERE state = 'succeeded' AND "trigger" IS NOT NULL GROUP BY task, "trigger"
            """) {
            let (task, trigger, finished) = try row.decode((String, String, Int64).self)
            result[task + " " + trigger] = Date(timeIntervalSince1970: Double(finished) / 1000)
        }
        return result
    }

    public func run(id: Int64) async throws -> (run: RunRecord, attempts: [AttemptRecord], steps: [StepRecord])? {
        guard let row = try await query(PostgresQuery(unsafeSQL: "SELECT \(Self.runColumns) FROM run WHERE id = $1", binds: int64Binds([id]))).first else {
            return nil
        }
        let attempts = try await query("""
            SELECT number, started_at, finished_at, pid, exit_code, signal, timed_out, output_tail, log_path FROM attempt WHERE run_id = \(id) ORDER BY number
            """).map { row in
            let r = try row.decode((Int, Int64, Int64?, Int64?, Int64?, Int64?, Bool, Data?, String?).self)
            return AttemptRecord(number: r.0, startedAt: date(r.1), finishedAt: r.2.map(date), pid: r.3.map { Int32($0) }, exitCode: r.4.map { Int32($0) },
                                 signal: r.5.map { Int32($0) }, timedOut: r.6, outputTail: r.7, logPath: r.8)
        }
        let steps = try await query("SELECT name, exit_code, stdout, finished_at FROM step WHERE run_id = \(id) ORDER BY finished_at").map(Self.stepRecord)
        return (try Self.runRecord(row), attempts, steps)
    }

    private static func runRecord(_ row: PostgresRow) throws -> RunRecord {
        let r = try row.decode((Int64, String, String?, Int64?, String, String, String?, Int, Int64?, Int64, Int64?, Int64?, String?, String?).self)
        guard let origin = RunOrigin(rawValue: r.4), let state = RunState(rawValue: r.5) else {
            throw StoreError.unreadable("run \(r.0) with an unknown origin or state")
        }
        var record = RunRecord(
            id: r.0, task: r.1, trigger: r.2, slot: r.3.map(Instant.init(secondsSinceEpoch:)), origin: origin, state: state, reason: r.6,
            attempts: r.7, exitCode: r.8.map { Int32($0) }, queuedAt: date(r.9), startedAt: r.10.map(date), finishedAt: r.11.map(date),
            commandUsed: r.12)
        record.node = r.13
        return record
    }

    private static func stepRecord(_ row: PostgresRow) throws -> StepRecord {
        let (name, exitCode, stdout, finishedAt) = try row.decode((String, Int64, Data?, Int64).self)
        return StepRecord(name: name, exitCode: Int32(exitCode), stdout: stdout ?? Data(), finishedAt: date(finishedAt))
    }

    /// Writes finished run records (imports, benchmarks) in one transaction; a slot recorded
    /// before refuses the whole batch.
    public func insertRuns(_ runs: [RunRecord]) async throws {
        guard !runs.isEmpty else { return }
        var rows = Columns(14)
        var figures = RunFigures()
        for run in runs {
            rows.add([run.task, run.trigger ?? "", run.trigger != nil, run.slot?.secondsSinceEpoch ?? Int64.min, run.origin.rawValue, run.state.rawValue,
                      run.reason ?? "", run.reason != nil, Int64(run.attempts), run.exitCode.map(Int64.init) ?? Int64.min, milliseconds(run.queuedAt),
                      run.startedAt.map(milliseconds) ?? Int64.min, run.finishedAt.map(milliseconds) ?? Int64.min, run.commandUsed ?? ""])
            let duration = run.startedAt.flatMap { started in run.finishedAt.map { milliseconds($0) - milliseconds(started) } }
            figures.add(task: run.task, queuedAt: milliseconds(run.queuedAt), state: run.state, attempts: run.attempts, duration: duration)
        }
        try await transaction { [rows, figures] connection in
            try await connection.query(rows.query("""
                INSERT INTO run (task, "trigger", slot, origin, state, reason, attempts, exit_code, queued_at, started_at, finished_at, command_used)
                SELECT task, CASE WHEN ht THEN trig END, nullif(slot, \(Int64.min)), origin, state, CASE WHEN hr THEN reason END, attempts,
                  nullif(exit_code, \(Int64.min)), queued_at, nullif(started_at, \(Int64.min)), nullif(finished_at, \(Int64.min)), nullif(command_used, '')
                FROM unnest($1::text[], $2::text[], $3::boolean[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::boolean[], $9::bigint[],
                  $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::text[])
                  AS x(task, trig, ht, slot, origin, state, reason, hr, attempts, exit_code, queued_at, started_at, finished_at, command_used)
                """), logger: self.logger)
            try await Self.write(figures, connection, logger: self.logger)
        }
    }

    public func runCount() async throws -> Int {
        try await query("SELECT count(*) FROM run").first?.decode(Int.self) ?? 0
    }

    /// Deletes finished runs beyond the policy, in short transactions, with their local log files.
    public func pruneHistory(_ policy: HistoryPolicy, now: Date) async throws -> Int {
        let cutoff = milliseconds(now) - Int64(policy.maxAge * 1000)
        let finished = "state IN (\(RunState.allCases.filter(\.isFinal).map { "'\($0.rawValue)'" }.joined(separator: ", ")))"
        var removed = 0
        func delete(_ sql: String, _ bindings: PostgresBindings) async throws -> Int {
            let ids = try await query(PostgresQuery(unsafeSQL: "DELETE FROM run WHERE id IN (\(sql)) RETURNING id", binds: bindings)).map { try $0.decode(Int64.self) }
            AttemptLogs.remove(runs: ids, in: logDirectory)
            return ids.count
        }
        while true {
            let count = try await delete("SELECT id FROM run WHERE queued_at < $1 AND \(finished) LIMIT 10000", int64Binds([cutoff]))
            removed += count
            if count == 0 { break }
        }
        let crowded = try await query(PostgresQuery(unsafeSQL: #"SELECT task, "trigger" FROM run GROUP BY task, "trigger" HAVING count(*) > $1"#,
                                                    binds: int64Binds([Int64(policy.runsPerTrigger)])))
        for row in crowded {
            let (task, trigger) = try row.decode((String, String?).self)
            var bindings = PostgresBindings()
            bindings.append(task)
            bindings.append(trigger)
            bindings.append(Int64(policy.runsPerTrigger - 1))
            removed += try await delete("""
                SELECT id FROM run WHERE task = $1 AND "trigger" IS NOT DISTINCT FROM $2 AND \(finished) AND id < (
                  SELECT id FROM run WHERE task = $1 AND "trigger" IS NOT DISTINCT FROM $2 ORDER BY id DESC LIMIT 1 OFFSET $3)
                """, bindings)
        }
        try await query("DELETE FROM run_stats WHERE hour < \(cutoff / 3_600_000)")
        // Hours whose histograms grew by appended entries are merged to one entry per bucket.
        for row in try await query("SELECT task, hour, durations FROM run_stats WHERE length(durations) > 1536") {
            let (task, hour, durations) = try row.decode((String, Int64, Data).self)
            try await query("""
                UPDATE run_stats SET durations = \(ByteBuffer(bytes: DurationHistogram(durations).data))
                WHERE task = \(task) AND hour = \(hour) AND durations = \(ByteBuffer(bytes: durations))
                """)
        }
        return removed
    }

    public func statistics(task: String?, since: Date?) async throws -> [TaskStatistics] {
        var summary = TaskStatistics.Summary()
        let rows = try await query("""
            SELECT task, runs, succeeded, attempts, retried, durations FROM run_stats
            WHERE (\(task)::text IS NULL OR task = \(task)) AND hour >= \(since.map { milliseconds($0) / 3_600_000 } ?? Int64.min)
            """)
        for row in rows {
            let r = try row.decode((String, Int, Int, Int, Int, Data).self)
            summary.add(task: r.0, runs: r.1, succeeded: r.2, attempts: r.3, retried: r.4, durations: r.5)
        }
        return summary.statistics
    }

    public func circuitState(task: String) async throws -> CircuitState {
        guard let row = try await query("SELECT state, consecutive_failures, opened_at FROM circuit_breaker WHERE task = \(task)").first else { return .closed }
        let (state, failures, openedAt) = try row.decode((String, Int, Int64?).self)
        guard let phase = CircuitState.Phase(rawValue: state) else { return .closed }
        return CircuitState(phase: phase, consecutiveFailures: failures, openedAt: openedAt.map(date))
    }

    public func setCircuitState(_ state: CircuitState, task: String) async throws {
        try await query("""
            INSERT INTO circuit_breaker (task, state, consecutive_failures, opened_at)
            VALUES (\(task), \(state.phase.rawValue), \(state.consecutiveFailures), \(state.openedAt.map(milliseconds)))
            ON CONFLICT (task) DO UPDATE SET state = excluded.state, consecutive_failures = excluded.consecutive_failures, opened_at = excluded.opened_at
            """)
    }

    public func step(run: Int64, name: String) async throws -> StepRecord? {
        try await query("SELECT name, exit_code, stdout, finished_at FROM step WHERE run_id = \(run) AND name = \(name)").first.map(Self.stepRecord)
    }

    public func recordStep(run: Int64, name: String, exitCode: Int32, stdout: Data, at: Date) async throws {
        try await query("""
            INSERT INTO step (run_id, name, exit_code, stdout, finished_at) VALUES (\(run), \(name), \(Int64(exitCode)), \(ByteBuffer(bytes: stdout)), \(milliseconds(at)))
            ON CONFLICT (run_id, name) DO UPDATE SET exit_code = excluded.exit_code, stdout = excluded.stdout, finished_at = excluded.finished_at
            """)
    }
}

func int64Binds(_ values: [Int64]) -> PostgresBindings {
    var bindings = PostgresBindings(capacity: values.count)
    for value in values { bindings.append(value) }
    return bindings
}

/// One `startAttempt`, as its batch sends it (no pid: -1; no log: ""; the CLI's runs: node "").
struct AttemptStart: Sendable {
    var run: Int64
    var number: Int64
    var pid: Int64
    var logPath: String
    var at: Int64
    var node: String
}

/// One `finishAttempt`, as its batch sends it.
struct AttemptEnd: Sendable {
    var run: Int64
    var number: Int64
    var at: Int64
    var exitCode: Int64?
    var signal: Int64?
    var timedOut: Bool
    var outputTail: ByteBuffer
    var node: String
}

/// One `finishRun`, as its batch sends it.
struct RunEnd: Sendable {
    var run: Int64
    var state: String
    var reason: String?
    var exitCode: Int64?
    var commandUsed: String?
    var finishedAt: Int64?
    var counted: Bool
    var succeeded: Bool
    var node: String
}
