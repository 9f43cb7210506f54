import Foundation
import GRDB

/// Per-task figures over finished runs (SPEC §6 `stats`).
public struct TaskStatistics: Sendable, Hashable {
    public var task: String
    /// Runs that ran to an end: succeeded, failed, timed out or cancelled.
    public var runs: Int
    public var successRate: Double
    public var meanAttempts: Double
    /// The share of runs that needed more than one attempt.
    public var retryRate: Double
    /// Seconds from the first attempt's start to the run's end, within 2.2 % (see
    /// `DurationHistogram`).
    public var p50Duration: Double?
    public var p95Duration: Double?

    /// Per-hour figures (rows of `run_stats`) summed per task.
    package struct Summary {
        private struct Sums { var runs = 0, succeeded = 0, attempts = 0, retried = 0, durations = DurationHistogram() }
        private var byTask: [String: Sums] = [:]

        package init() {}

        package mutating func add(task: String, runs: Int, succeeded: Int, attempts: Int, retried: Int, durations: Data) {
            var sums = byTask[task, default: Sums()]
            sums.runs += runs
            sums.succeeded += succeeded
            sums.attempts += attempts
            sums.retried += retried
            sums.durations.merge(DurationHistogram(durations))
            byTask[task] = sums
        }

        /// By task name; tasks without a finished run are left out.
        package var statistics: [TaskStatistics] {
            byTask.keys.sorted().compactMap { name in
                let sums = byTask[name]!
                guard sums.runs > 0 else { return nil }
                let count = Double(sums.runs)
                return TaskStatistics(
                    task: name, runs: sums.runs, successRate: Double(sums.succeeded) / count, meanAttempts: Double(sums.attempts) / count,
                    retryRate: Double(sums.retried) / count, p50Duration: sums.durations.percentile(0.5),
                    p95Duration: sums.durations.percentile(0.95))
            }
        }
    }
}

/// Run durations counted in logarithmic buckets, 16 per doubling: a bucket's middle is within
/// 2.2 % of every duration in it. Percentiles of any number of runs come from a few hundred
/// counters, so `stats` over a million runs reads kilobytes, not the runs.
package struct DurationHistogram: Equatable {
    private(set) var counts: [Int: Int] = [:]
    static let bucketsPerDoubling = 16.0

    package static func bucket(milliseconds: Int64) -> Int {
        milliseconds < 1 ? 0 : Int((log2(Double(milliseconds)) * bucketsPerDoubling).rounded(.down)) + 1
    }

    /// The middle of a bucket, in milliseconds.
    static func middle(of bucket: Int) -> Double {
        bucket == 0 ? 0 : pow(2, (Double(bucket - 1) + 0.5) / bucketsPerDoubling)
    }

    package mutating func add(milliseconds: Int64, count: Int = 1) { counts[Self.bucket(milliseconds: milliseconds), default: 0] += count }
    package mutating func merge(_ other: DurationHistogram) { counts.merge(other.counts, uniquingKeysWith: +) }
    var total: Int { counts.values.reduce(0, +) }

    /// The duration at rank ⌈p·n⌉ among the n counted, in seconds.
    func percentile(_ p: Double) -> Double? {
        let total = self.total
        guard total > 0 else { return nil }
        let rank = max(1, Int((p * Double(total)).rounded(.up)))
        var seen = 0
        for bucket in counts.keys.sorted() {
            seen += counts[bucket]!
            if seen >= rank { return Self.middle(of: bucket) / 1000 }
        }
        return nil
    }

    /// (UInt16 bucket, UInt32 count) pairs, little-endian.
    package var data: Data {
        var data = Data(capacity: counts.count * 6)
        for (bucket, count) in counts.sorted(by: { $0.key < $1.key }) {
            withUnsafeBytes(of: UInt16(bucket).littleEndian) { data.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt32(clamping: count).littleEndian) { data.append(contentsOf: $0) }
        }
        return data
    }

    package init() {}

    package init(_ data: Data) {
        let bytes = [UInt8](data)
        var offset = 0
        while offset + 6 <= bytes.count {
            let bucket = Int(bytes[offset]) | Int(bytes[offset + 1]) << 8
            let count = (0..<4).reduce(0) { $0 | Int(bytes[offset + 2 + $1]) << (8 * $1) }
            counts[bucket, default: 0] += count
            offset += 6
        }
    }
}

extension BelfryDatabase {
    /// Statistics per task (one task when given), over runs queued since `since` (to the hour:
    /// the figures are kept per task and hour).
    public func statistics(task: String? = nil, since: Date? = nil) throws -> [TaskStatistics] {
        var conditions: [String] = []
        var arguments: StatementArguments = []
        if let task { conditions.append("task = ?"); arguments += [task] }
        if let since { conditions.append("hour >= ?"); arguments += [milliseconds(since) / 3_600_000] }
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        var summary = TaskStatistics.Summary()
        try pool.read { db in
            let rows = try Row.fetchCursor(db, sql: "SELECT task, runs, succeeded, attempts, retried, durations FROM run_stats \(filter)",
                                           arguments: arguments)
            while let row = try rows.next() {
                summary.add(task: row[0], runs: row[1], succeeded: row[2], attempts: row[3], retried: row[4], durations: row[5])
            }
        }
        return summary.statistics
    }

    /// Adds run `id` to the per-task, per-hour figures if it ran to an end (`RunFigures.add`
    /// decides). Called in the transaction that gives the run its final state.
    static func countFinishedRun(_ db: Database, id: Int64) throws {
        try countRuns(db, where: "WHERE id = ?", arguments: [id])
    }

    /// Migration v2: the figures of every run already finished.
    static func countAllFinishedRuns(_ db: Database) throws {
        try countRuns(db, where: "", arguments: [])
    }

    private static func countRuns(_ db: Database, where condition: String, arguments: StatementArguments) throws {
        var figures = RunFigures()
        let rows = try Row.fetchCursor(
            db.cachedStatement(sql: "SELECT task, queued_at, state, attempts, finished_at - started_at FROM run \(condition)"),
            arguments: arguments)
        while let row = try rows.next() {
            figures.add(task: row[0], queuedAt: row[1], state: RunState(rawValue: row[2]) ?? .queued, attempts: row[3], duration: row[4])
        }
        try figures.write(db)
    }
}

/// Figures of finished runs summed per task and hour in memory, then added to `run_stats` with
/// one read and one write per task and hour (a batch of 10,000 runs of one trigger is a few rows).
package struct RunFigures {
    private struct Key: Hashable {
        var task: String
        var hour: Int64
    }

    private struct Sums {
        var runs = 0, succeeded = 0, attempts = 0, retried = 0
        var durations = DurationHistogram()
    }

    private var sums: [Key: Sums] = [:]

    package init() {}

    /// The figures per task and hour, to add to what is stored.
    package var entries: [(task: String, hour: Int64, runs: Int, succeeded: Int, attempts: Int, retried: Int, durations: DurationHistogram)] {
        sums.map { ($0.key.task, $0.key.hour, $0.value.runs, $0.value.succeeded, $0.value.attempts, $0.value.retried, $0.value.durations) }
    }

    /// Whether a run in `state` counts in the figures: it ran to an end (succeeded, failed,
    /// timed out or cancelled).
    package static func counts(_ state: RunState) -> Bool {
        [.succeeded, .failed, .timedOut, .cancelled].contains(state)
    }

    /// Counts a run if it ran to an end.
    package mutating func add(task: String, queuedAt: Int64, state: RunState, attempts: Int, duration: Int64?) {
        guard Self.counts(state) else { return }
        let key = Key(task: task, hour: queuedAt / 3_600_000)
        var value = sums[key] ?? Sums()
        value.runs += 1
        value.succeeded += state == .succeeded ? 1 : 0
        value.attempts += attempts
        value.retried += attempts > 1 ? 1 : 0
        if let duration { value.durations.add(milliseconds: max(0, duration)) }
        sums[key] = value
    }

    func write(_ db: Database) throws {
        for (key, value) in sums {
            var durations = value.durations
            if let data = try Data.fetchOne(db.cachedStatement(sql: "SELECT durations FROM run_stats WHERE task = ? AND hour = ?"),
                                            arguments: [key.task, key.hour]) {
                durations.merge(DurationHistogram(data))
            }
            try db.cachedStatement(sql: """
                INSERT INTO run_stats (task, hour, runs, succeeded, attempts, retried, durations) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (task, hour) DO UPDATE SET runs = runs + excluded.runs, succeeded = succeeded + excluded.succeeded,
                  attempts = attempts + excluded.attempts, retried = retried + excluded.retried, durations = excluded.durations
                """).execute(arguments: [key.task, key.hour, value.runs, value.succeeded, value.attempts, value.retried, durations.data])
        }
    }
}
