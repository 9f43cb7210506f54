import BelfrySchedule
import Foundation
import GRDB

/// Where a run came from (SPEC §3).
public enum RunOrigin: String, Sendable, Codable, CaseIterable {
    case scheduled, manual
    case catchUp = "catch-up"
    /// Started through the HTTP API.
    case api
}

/// The states of a run (SPEC §4).
public enum RunState: String, Sendable, Codable, CaseIterable {
    case queued, running, succeeded, failed
    case timedOut = "timed_out"
    case cancelled, skipped, missed

    /// A run in a final state is history: it may be pruned.
    public var isFinal: Bool { self != .queued && self != .running }
}

/// A run as the history holds it (the SPEC §6 fields of `belfry runs`).
public struct RunRecord: Sendable, Hashable {
    /// Nil until the record is written.
    public var id: Int64?
    public var task: String
    public var trigger: String?
    public var slot: Instant?
    public var origin: RunOrigin
    public var state: RunState
    public var reason: String?
    public var attempts: Int
    public var exitCode: Int32?
    public var queuedAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    /// `primary`, or `fallback N` (1-based), once the run has finished.
    public var commandUsed: String?
    /// The node that started the last attempt (several daemons on PostgreSQL); nil on SQLite.
    public var node: String?

    public init(
        id: Int64? = nil, task: String, trigger: String?, slot: Instant?, origin: RunOrigin, state: RunState, reason: String? = nil,
        attempts: Int = 0, exitCode: Int32? = nil, queuedAt: Date, startedAt: Date? = nil, finishedAt: Date? = nil,
        commandUsed: String? = nil
    ) {
        (self.id, self.task, self.trigger, self.slot, self.origin, self.state, self.reason) = (id, task, trigger, slot, origin, state, reason)
        (self.attempts, self.exitCode, self.queuedAt, self.startedAt, self.finishedAt) = (attempts, exitCode, queuedAt, startedAt, finishedAt)
        self.commandUsed = commandUsed
    }
}

/// How much run history to keep (SPEC §3 defaults: 1000 runs per trigger and 90 days).
public struct HistoryPolicy: Sendable, Hashable {
    public var runsPerTrigger = 1000
    public var maxAge: TimeInterval = 90 * 86400
    public init() {}
}

extension BelfryDatabase {
    /// Writes run records in one transaction. A record for a slot already recorded is refused
    /// (UNIQUE on task, trigger and slot): the whole batch fails and nothing is written.
    public func insertRuns(_ runs: [RunRecord]) throws {
        try pool.write { db in
            let statement = try db.cachedStatement(sql: """
                INSERT INTO run (task, "trigger", slot, origin, state, reason, attempts, exit_code, queued_at, started_at, finished_at,
                  command_used)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            var figures = RunFigures()
            for run in runs {
                try statement.execute(arguments: [
                    run.task, run.trigger, run.slot?.secondsSinceEpoch, run.origin.rawValue, run.state.rawValue, run.reason,
                    run.attempts, run.exitCode, milliseconds(run.queuedAt), run.startedAt.map(milliseconds),
                    run.finishedAt.map(milliseconds), run.commandUsed,
                ])
                let duration = run.startedAt.flatMap { started in run.finishedAt.map { milliseconds($0) - milliseconds(started) } }
                figures.add(task: run.task, queuedAt: milliseconds(run.queuedAt), state: run.state, attempts: run.attempts, duration: duration)
            }
            try figures.write(db)
        }
    }

    /// How many runs the history holds.
    public func runCount() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM run") ?? 0 }
    }

    /// Deletes finished runs beyond the policy, with their attempts, steps and log files:
    /// queued before `maxAge` ago, or beyond the newest `runsPerTrigger` of their trigger (manual
    /// runs count per task). Per-hour figures (`stats`) older than `maxAge` go too. Works in
    /// short transactions, so that the scheduler is never kept waiting. Returns how many runs went.
    @discardableResult
    public func pruneHistory(_ policy: HistoryPolicy = HistoryPolicy(), now: Date = Date()) throws -> Int {
        let cutoff = milliseconds(now) - Int64(policy.maxAge * 1000)
        let finished = "state IN (\(RunState.allCases.filter(\.isFinal).map { "'\($0.rawValue)'" }.joined(separator: ", ")))"
        var removed = 0
        func delete(_ select: String, _ arguments: StatementArguments) throws -> Int {
            let ids = try pool.write { db in
                let ids = try Int64.fetchAll(db, sql: select, arguments: arguments)
                for chunk in stride(from: 0, to: ids.count, by: 500) {
                    let part = ids[chunk..<min(ids.count, chunk + 500)]
                    try db.execute(sql: "DELETE FROM run WHERE id IN (\(part.map(String.init).joined(separator: ",")))")
                }
                return ids
            }
            AttemptLogs.remove(runs: ids, in: logDirectory)
            return ids.count
        }
        while true {
            let count = try delete("SELECT id FROM run WHERE queued_at < ? AND \(finished) LIMIT 10000", [cutoff])
            removed += count
            if count == 0 { break }
        }
        let crowded = try pool.read { db in
            try Row.fetchAll(db, sql: #"SELECT task, "trigger" FROM run GROUP BY task, "trigger" HAVING count(*) > ?"#,
                             arguments: [policy.runsPerTrigger])
        }
        for row in crowded {
            let (task, trigger): (String, String?) = (row[0], row[1])
            removed += try delete("""
                SELECT id FROM run WHERE task = ? AND "trigger" IS ? AND \(finished) AND id < (
                  SELECT id FROM run WHERE task = ? AND "trigger" IS ? ORDER BY id DESC LIMIT 1 OFFSET ?)
                """, [task, trigger, task, trigger, policy.runsPerTrigger - 1])
        }
        try pool.write { db in try db.execute(sql: "DELETE FROM run_stats WHERE hour < ?", arguments: [cutoff / 3_600_000]) }
        return removed
    }
}

package func milliseconds(_ date: Date) -> Int64 {
    Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
}
