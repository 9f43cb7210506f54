import BelfrySchedule
import Foundation
import GRDB
import GRDBSQLite

/// One process launch of a run.
public struct AttemptRecord: Sendable, Hashable {
    public var number: Int
    public var startedAt: Date
    public var finishedAt: Date?
    public var pid: Int32?
    public var exitCode: Int32?
    public var signal: Int32?
    public var timedOut: Bool
    /// The last 4 KiB of the attempt's output.
    public var outputTail: Data?
    public var logPath: String?

    package init(
        number: Int, startedAt: Date, finishedAt: Date?, pid: Int32?, exitCode: Int32?, signal: Int32?, timedOut: Bool, outputTail: Data?, logPath: String?
    ) {
        (self.number, self.startedAt, self.finishedAt, self.pid, self.exitCode) = (number, startedAt, finishedAt, pid, exitCode)
        (self.signal, self.timedOut, self.outputTail, self.logPath) = (signal, timedOut, outputTail, logPath)
    }
}

/// A resumable step's stored result (SPEC §5).
public struct StepRecord: Sendable, Hashable {
    public var name: String
    public var exitCode: Int32
    public var stdout: Data
    public var finishedAt: Date

    package init(name: String, exitCode: Int32, stdout: Data, finishedAt: Date) {
        (self.name, self.exitCode, self.stdout, self.finishedAt) = (name, exitCode, stdout, finishedAt)
    }
}

/// Which runs `runs(matching:)` returns.
public struct RunFilter: Sendable {
    public var task: String?
    public var trigger: String?
    public var state: RunState?
    public var since: Date?
    /// Only runs older than this one (a page's cursor: the last id of the page before).
    public var before: Int64?
    public var limit = 50
    public init() {}
}

extension BelfryDatabase {
    /// Records a new run, `queued`, and returns its id. For a slot, the UNIQUE constraint on
    /// (task, trigger, slot) refuses a second run.
    public func createRun(
        task: String, trigger: String?, slot: Instant?, origin: RunOrigin, inputs: String?, at: Date
    ) throws -> Int64 {
        try pool.write { db in
            try db.execute(sql: """
                INSERT INTO run (task, "trigger", slot, origin, state, inputs, queued_at) VALUES (?, ?, ?, ?, 'queued', ?, ?)
                """, arguments: [task, trigger, slot?.secondsSinceEpoch, origin.rawValue, inputs, milliseconds(at)])
            return db.lastInsertedRowID
        }
    }

    /// Records a run that will not run (`skipped`, `missed`) with its reason, finished at once.
    public func recordRunNotRun(
        task: String, trigger: String?, slot: Instant?, origin: RunOrigin, state: RunState, reason: String, at: Date
    ) throws -> Int64 {
        try pool.write { db in
            try db.execute(sql: """
                INSERT INTO run (task, "trigger", slot, origin, state, reason, queued_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [task, trigger, slot?.secondsSinceEpoch, origin.rawValue, state.rawValue, reason, milliseconds(at), milliseconds(at)])
            return db.lastInsertedRowID
        }
    }

    /// An attempt is starting: the run is `running`; the attempt has its log (and its pid, once
    /// known). Committed before the process starts, so that a crash never hides an attempt.
    public func startAttempt(run: Int64, number: Int, pid: Int32?, logPath: String?, at: Date) async throws {
        let at = milliseconds(at)
        try await writeTogether { db in
            try db.cachedStatement(sql: """
                INSERT INTO attempt (run_id, number, started_at, pid, log_path) VALUES (?, ?, ?, ?, ?)
                """).execute(arguments: [run, number, at, pid, logPath])
            try db.cachedStatement(sql: """
                UPDATE run SET state = 'running', attempts = ?, started_at = coalesce(started_at, ?) WHERE id = ?
                """).execute(arguments: [number, at, run])
        }
    }

    /// The attempt's process has started: its pid (its process group), for recovery after a crash.
    public func setAttemptProcess(run: Int64, number: Int, pid: Int32) async throws {
        try await writeTogether { db in
            try db.cachedStatement(sql: "UPDATE attempt SET pid = ? WHERE run_id = ? AND number = ?").execute(arguments: [pid, run, number])
        }
    }

    /// An attempt has ended: how, and the tail of its output.
    public func finishAttempt(
        run: Int64, number: Int, exitCode: Int32?, signal: Int32?, timedOut: Bool, outputTail: Data, at: Date
    ) async throws {
        let at = milliseconds(at)
        try await writeTogether { db in
            try db.cachedStatement(sql: """
                UPDATE attempt SET finished_at = ?, exit_code = ?, signal = ?, timed_out = ?, output_tail = ?
                WHERE run_id = ? AND number = ?
                """).execute(arguments: [at, exitCode, signal, timedOut, outputTail, run, number])
        }
    }

    /// The run has ended in a final state.
    public func finishRun(
        _ run: Int64, state: RunState, reason: String?, exitCode: Int32?, commandUsed: String?, at: Date
    ) async throws {
        // A run put back in the queue (interrupted by a shutdown) has not finished.
        let finished = state.isFinal ? milliseconds(at) : nil
        try await writeTogether { db in
            try db.cachedStatement(sql: """
                UPDATE run SET state = ?, reason = ?, exit_code = ?, command_used = ?, finished_at = ? WHERE id = ?
                """).execute(arguments: [state.rawValue, reason, exitCode, commandUsed, finished, run])
            try Self.countFinishedRun(db, id: run)
        }
    }

    /// A run's writes on its way (its attempts' starts, pids and ends, its end) asked for while
    /// others are being written go together, in one transaction (`Coalescer`), each in a
    /// savepoint of its own: a burst of due runs makes a few commits, not several per run, and a
    /// write that fails fails alone.
    private func writeTogether(_ write: @escaping @Sendable (Database) throws -> Void) async throws {
        try await runWrites.submit("write", write) { [pool] batch in
            try pool.write { db in
                batch.map { write in
                    Result {
                        try db.inSavepoint {
                            try write(db)
                            return .commit
                        }
                    }
                }
            }
        }.get()
    }

    private static let runColumns = """
        id, task, "trigger", slot, origin, state, reason, attempts, exit_code, queued_at, started_at, finished_at, command_used
        """

    /// Runs, newest first.
    public func runs(matching filter: RunFilter) throws -> [RunRecord] {
        var conditions: [String] = []
        var arguments: StatementArguments = []
        if let task = filter.task { conditions.append("task = ?"); arguments += [task] }
        if let trigger = filter.trigger { conditions.append("\"trigger\" = ?"); arguments += [trigger] }
        if let state = filter.state { conditions.append("state = ?"); arguments += [state.rawValue] }
        if let since = filter.since { conditions.append("queued_at >= ?"); arguments += [milliseconds(since)] }
        if let before = filter.before { conditions.append("id < ?"); arguments += [before] }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        arguments += [filter.limit]
        return try pool.read { db in
            try Self.fetchRuns(db.cachedStatement(sql: "SELECT \(Self.runColumns) FROM run \(whereClause) ORDER BY id DESC LIMIT ?"), arguments: arguments)
        }
    }

    public func lastSuccesses() throws -> [String: Date] {
        try pool.read { db in
            var result: [String: Date] = [:]
            let rows = try Row.fetchCursor(db, sql: """
                SELECT task, "trigger", max(finished_at) FROM run WHERE state = 'succeeded' AND "trigger" IS NOT NULL GROUP BY task, "trigger"
                """)
            while let row = try rows.next() {
                let (task, trigger, finished): (String, String, Int64) = (row[0], row[1], row[2])
                result[task + " " + trigger] = Date(timeIntervalSince1970: Double(finished) / 1000)
            }
            return result
        }
    }

    /// One run with its attempts and steps, or nil.
    public func run(id: Int64) throws -> (run: RunRecord, attempts: [AttemptRecord], steps: [StepRecord])? {
        try pool.read { db in
            guard let run = try Self.fetchRuns(db.cachedStatement(sql: "SELECT \(Self.runColumns) FROM run WHERE id = ?"), arguments: [id]).first
            else { return nil }
            let attempts = try Row.fetchAll(db, sql: """
                SELECT number, started_at, finished_at, pid, exit_code, signal, timed_out, output_tail, log_path
                FROM attempt WHERE run_id = ? ORDER BY number
                """, arguments: [id]).map { row in
                AttemptRecord(
                    number: row[0], startedAt: date(row[1]), finishedAt: (row[2] as Int64?).map(date), pid: row[3],
                    exitCode: row[4], signal: row[5], timedOut: row[6], outputTail: row[7], logPath: row[8])
            }
            return (run, attempts, try Self.steps(db, run: id))
        }
    }

    /// The runs a selection of `runColumns` finds.
    private static func fetchRuns(_ statement: Statement, arguments: StatementArguments) throws -> [RunRecord] {
        // The cursor resets the statement when it goes: it lives until the last row is read.
        let rows = try Row.fetchCursor(statement, arguments: arguments)
        return try withExtendedLifetime(rows) {
            var runs: [RunRecord] = []
            while try rows.next() != nil { runs.append(try runSummary(statement)) }
            return runs
        }
    }

    /// The run in the current row of `statement` (a selection of `runColumns`), read with
    /// SQLite's own column functions: GRDB's generic decoding of its 13 columns was 9 % of the
    /// daemon's CPU serving `GET /api/v1/runs`.
    private static func runSummary(_ statement: Statement) throws -> RunRecord {
        let row = statement.sqliteStatement
        func integer(_ column: Int32) -> Int64? {
            sqlite3_column_type(row, column) == SQLITE_NULL ? nil : sqlite3_column_int64(row, column)
        }
        func text(_ column: Int32) -> String? {
            guard let characters = sqlite3_column_text(row, column) else { return nil }
            return String(decoding: UnsafeBufferPointer(start: characters, count: Int(sqlite3_column_bytes(row, column))), as: UTF8.self)
        }
        let id = sqlite3_column_int64(row, 0)
        guard let origin = text(4).flatMap(RunOrigin.init(rawValue:)), let state = text(5).flatMap(RunState.init(rawValue:)) else {
            throw DatabaseError(message: "run \(id) has an unknown origin or state")
        }
        return RunRecord(
            id: id, task: text(1) ?? "", trigger: text(2), slot: integer(3).map(Instant.init(secondsSinceEpoch:)),
            origin: origin, state: state, reason: text(6), attempts: Int(sqlite3_column_int64(row, 7)),
            exitCode: integer(8).map { Int32(truncatingIfNeeded: $0) }, queuedAt: date(sqlite3_column_int64(row, 9)),
            startedAt: integer(10).map(date), finishedAt: integer(11).map(date), commandUsed: text(12))
    }

    private static func steps(_ db: Database, run: Int64) throws -> [StepRecord] {
        try Row.fetchAll(db, sql: "SELECT name, exit_code, stdout, finished_at FROM step WHERE run_id = ? ORDER BY finished_at", arguments: [run])
            .map { StepRecord(name: $0[0], exitCode: $0[1], stdout: $0[2] ?? Data(), finishedAt: date($0[3])) }
    }
}

/// A task's circuit breaker as stored (SPEC §4): it survives restarts.
public struct CircuitState: Sendable, Hashable {
    public enum Phase: String, Sendable {
        case closed, open, probing
    }

    public var phase: Phase
    public var consecutiveFailures: Int
    public var openedAt: Date?

    public init(phase: Phase, consecutiveFailures: Int, openedAt: Date?) {
        (self.phase, self.consecutiveFailures, self.openedAt) = (phase, consecutiveFailures, openedAt)
    }

    public static let closed = CircuitState(phase: .closed, consecutiveFailures: 0, openedAt: nil)
}

extension BelfryDatabase {
    public func circuitState(task: String) throws -> CircuitState {
        try pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT state, consecutive_failures, opened_at FROM circuit_breaker WHERE task = ?", arguments: [task]),
                let phase = CircuitState.Phase(rawValue: row[0])
            else { return .closed }
            return CircuitState(phase: phase, consecutiveFailures: row[1], openedAt: (row[2] as Int64?).map(date))
        }
    }

    public func setCircuitState(_ state: CircuitState, task: String) throws {
        try pool.write { db in
            try db.execute(sql: """
                INSERT INTO circuit_breaker (task, state, consecutive_failures, opened_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (task) DO UPDATE SET state = excluded.state, consecutive_failures = excluded.consecutive_failures,
                  opened_at = excluded.opened_at
                """, arguments: [task, state.phase.rawValue, state.consecutiveFailures, state.openedAt.map(milliseconds)])
        }
    }

    /// The stored result of a resumable step of a run, if it succeeded before.
    public func step(run: Int64, name: String) throws -> StepRecord? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT name, exit_code, stdout, finished_at FROM step WHERE run_id = ? AND name = ?", arguments: [run, name])
                .map { StepRecord(name: $0[0], exitCode: $0[1], stdout: $0[2] ?? Data(), finishedAt: date($0[3])) }
        }
    }

    /// Stores a step's result for later attempts of the same run.
    public func recordStep(run: Int64, name: String, exitCode: Int32, stdout: Data, at: Date) throws {
        try pool.write { db in
            try db.execute(sql: """
                INSERT INTO step (run_id, name, exit_code, stdout, finished_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (run_id, name) DO UPDATE SET exit_code = excluded.exit_code, stdout = excluded.stdout,
                  finished_at = excluded.finished_at
                """, arguments: [run, name, exitCode, stdout, milliseconds(at)])
        }
    }
}
