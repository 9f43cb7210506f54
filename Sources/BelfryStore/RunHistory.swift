import BelfrySchedule
import Foundation
import GRDB

/// Where a run came from (SPEC §3).
public enum RunOrigin: String, Sendable, Codable, CaseIterable {
    case scheduled, manual
    case catchUp = "catch-up"
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
            for run in runs {
                try statement.execute(arguments: [
                    run.task, run.trigger, run.slot?.secondsSinceEpoch, run.origin.rawValue, run.state.rawValue, run.reason,
                    run.attempts, run.exitCode, milliseconds(run.queuedAt), run.startedAt.map(milliseconds),
                    run.finishedAt.map(milliseconds), run.commandUsed,
                ])
            }
        }
    }

    /// How many runs the history holds.
    public func runCount() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM run") ?? 0 }
    }

    /// Deletes finished runs beyond the policy: older than `maxAge`, or beyond the newest
    /// `runsPerTrigger` of their trigger (manual runs count per task). Returns how many went.
    @discardableResult
    public func pruneHistory(_ policy: HistoryPolicy = HistoryPolicy(), now: Date = Date()) throws -> Int {
        let cutoff = milliseconds(now) - Int64(policy.maxAge * 1000)
        let finished = RunState.allCases.filter(\.isFinal).map { "'\($0.rawValue)'" }.joined(separator: ", ")
        return try pool.write { db in
            try db.execute(sql: """
                DELETE FROM run WHERE state IN (\(finished)) AND (
                  coalesce(finished_at, queued_at) < ?
                  OR id IN (
                    SELECT id FROM (
                      SELECT id, row_number() OVER (PARTITION BY task, "trigger" ORDER BY id DESC) AS newest
                      FROM run
                    ) WHERE newest > ?))
                """, arguments: [cutoff, policy.runsPerTrigger])
            return db.changesCount
        }
    }
}

func milliseconds(_ date: Date) -> Int64 {
    Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
}
