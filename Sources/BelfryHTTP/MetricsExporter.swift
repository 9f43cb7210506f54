import BelfrySchedule
import Foundation
import Prometheus
import Synchronization

/// The daemon's metrics, in Prometheus's text format at `/metrics`. The daemon reports what
/// happens (runs ending, slots not run, failures of the store, clock jumps); gauges of what
/// is (triggers, runs in flight) are read when scraped.
public final class MetricsExporter: Sendable {
    /// What is, read at each scrape.
    public struct Reading: Sendable {
        public var activeTriggers: Int
        /// Per queue: runs in it and runs waiting for a place, in this daemon.
        public var queues: [String: (running: Int, waiting: Int)]
        /// With PostgreSQL: the daemons whose lease is current, and how long this one's may still be trusted.
        public var nodes: Int?
        public var leaseRemaining: Duration?

        public init(activeTriggers: Int, queues: [String: (running: Int, waiting: Int)], nodes: Int? = nil, leaseRemaining: Duration? = nil) {
            (self.activeTriggers, self.queues, self.nodes, self.leaseRemaining) = (activeTriggers, queues, nodes, leaseRemaining)
        }
    }

    private let registry = PrometheusCollectorRegistry()
    private let read: @Sendable () async -> Reading
    /// Per trigger: its next slot and when its last success finished; nil: no per-trigger series.
    private let perTrigger: (@Sendable () async -> [(task: String, trigger: String, next: Instant?, lastSuccess: Date?)])?
    private let storeErrors: Counter
    private let clockJumps: Counter
    private let activeTriggers: Gauge
    private let lateness: DurationHistogram
    /// Seconds: a run's duration spans milliseconds to hours.
    static let durationBuckets: [Duration] = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600].map { .milliseconds(Int64($0 * 1000)) }
    /// From a slot to its first attempt's start: milliseconds, or seconds when something is wrong.
    static let latenessBuckets: [Duration] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60].map { .milliseconds(Int64($0 * 1000)) }

    /// The tasks with series of their own (in order of first use); runs of later tasks are counted
    /// under `task="_other"`. Every label set is a series kept for good, and the registry copies a
    /// family's series to add one: 100,000 tasks made each new one cost a copy of 100,000.
    private let labelledTasks = Mutex<Set<String>>([])
    let maxTasks: Int
    /// The `task` label of tasks past `maxTasks` (a task's name always holds a dot).
    static let otherTasks = "_other"

    /// `build` labels `belfry_build_info` (version, commit...); `read` is called at each scrape;
    /// `maxTasks` tasks get series of their own.
    public init(
        build: [(String, String)], read: @escaping @Sendable () async -> Reading,
        perTrigger: (@Sendable () async -> [(task: String, trigger: String, next: Instant?, lastSuccess: Date?)])? = nil,
        maxTasks: Int = 5_000
    ) {
        self.maxTasks = maxTasks
        self.read = read
        self.perTrigger = perTrigger
        registry.makeGauge(descriptor: Self.name("build", "info", "Always 1: the running version, its commit, Swift and SQLite."), labels: build).set(to: 1)
        storeErrors = registry.makeCounter(descriptor: Self.name("store_errors", "total", "Times the database failed under the daemon."))
        clockJumps = registry.makeCounter(descriptor: Self.name("wall_clock_jumps", "total", "Wall-clock jumps noticed."))
        activeTriggers = registry.makeGauge(descriptor: Self.name("triggers", "", "Triggers the daemon schedules."), labels: [("active", "true")])
        lateness = registry.makeDurationHistogram(
            descriptor: Self.name("slot_lateness", "seconds", "From a slot to the start of its run's first attempt."), labels: [],
            buckets: Self.latenessBuckets)
    }

    /// A run ended (or went back to the queue).
    public func runFinished(task: String, state: String) {
        registry.makeCounter(descriptor: Self.name("runs", "total", "Runs that ended, by task and state."), labels: [("task", taskLabel(task)), ("state", state)])
            .increment()
    }

    /// A slot recorded `missed` or `skipped`.
    public func slotNotRun(task: String, state: String, reason: String) {
        let name = Self.name(state == "missed" ? "slots_missed" : "slots_skipped", "total", "Slots not run, by task and reason.")
        registry.makeCounter(descriptor: name, labels: [("task", taskLabel(task)), ("reason", Self.reasonLabel(reason))]).increment()
    }

    /// An attempt ended: `succeeded`, `failed`, `timed_out`, `killed` or `not_started`.
    public func attemptEnded(task: String, outcome: String) {
        registry.makeCounter(descriptor: Self.name("attempts", "total", "Attempts that ended, by task and outcome."),
                             labels: [("task", taskLabel(task)), ("outcome", outcome)]).increment()
    }

    /// A run whose attempts ran ended after `duration`.
    public func runDuration(task: String, _ duration: Duration) {
        registry.makeDurationHistogram(
            descriptor: Self.name("run_duration", "seconds", "From a run's first attempt's start to its end, by task."),
            labels: [("task", taskLabel(task))], buckets: Self.durationBuckets
        ).record(duration)
    }

    /// A slot's first attempt started `late` after the slot.
    public func slotLateness(_ late: Duration) { lateness.record(max(.zero, late)) }

    /// `task`, or `_other` once `maxTasks` other tasks have series.
    func taskLabel(_ task: String) -> String {
        labelledTasks.withLock { tasks in
            if tasks.contains(task) { return task }
            guard tasks.count < maxTasks else { return Self.otherTasks }
            tasks.insert(task)
            return task
        }
    }

    /// The task's circuit breaker is open (1) or not (0). Always the task's own series: a gauge
    /// of several tasks would say nothing.
    public func circuit(task: String, open: Bool) {
        registry.makeGauge(descriptor: Self.name("circuit_open", "", "1 while the task's circuit breaker is open."), labels: [("task", task)])
            .set(to: open ? 1 : 0)
    }

    public func storeFailed() { storeErrors.increment() }

    public func clockJumped() { clockJumps.increment() }

    /// The page `/metrics` serves.
    public func scrape() async -> [UInt8] {
        let now = await read()
        activeTriggers.set(to: Double(now.activeTriggers))
        for (queue, load) in now.queues {
            registry.makeGauge(descriptor: Self.name("runs", "running", "Runs in each queue, in this daemon."), labels: [("queue", queue)])
                .set(to: Double(load.running))
            registry.makeGauge(descriptor: Self.name("runs", "queued", "Runs waiting for a place in each queue, in this daemon."), labels: [("queue", queue)])
                .set(to: Double(load.waiting))
        }
        if let nodes = now.nodes {
            registry.makeGauge(descriptor: Self.name("nodes", "", "Daemons sharing the database whose lease is current.")).set(to: Double(nodes))
        }
        if let remaining = now.leaseRemaining {
            let (seconds, attoseconds) = remaining.components
            registry.makeGauge(descriptor: Self.name("node_lease_remaining", "seconds", "How much longer this daemon's lease may be trusted."))
                .set(to: max(0, Double(seconds) + Double(attoseconds) / 1e18))
        }
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        if let perTrigger {
            // Written directly: 100,000 triggers would be 200,000 registered gauges.
            let series = await perTrigger().sorted { ($0.task, $0.trigger) < ($1.task, $1.trigger) }
            var next = "# HELP belfry_trigger_next_slot_timestamp_seconds The next slot of each active trigger.\n"
                + "# TYPE belfry_trigger_next_slot_timestamp_seconds gauge\n"
            var success = "# HELP belfry_trigger_last_success_timestamp_seconds When the latest successful run of each trigger finished.\n"
                + "# TYPE belfry_trigger_last_success_timestamp_seconds gauge\n"
            for item in series {
                let labels = "{task=\"\(Self.label(item.task))\",trigger=\"\(Self.label(item.trigger))\"}"
                if let slot = item.next { next += "belfry_trigger_next_slot_timestamp_seconds\(labels) \(slot.secondsSinceEpoch)\n" }
                if let date = item.lastSuccess {
                    success += "belfry_trigger_last_success_timestamp_seconds\(labels) \(String(format: "%.3f", date.timeIntervalSince1970))\n"
                }
            }
            buffer.append(contentsOf: (next + success).utf8)
        }
        return buffer
    }

    /// A label value in the text format: backslash, quote and newline escaped.
    static func label(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "belfry", metricName: metric, unitName: unit, helpText: help)
    }

    /// A reason's first words only: label values stay few (a reason may carry a time or a count).
    static func reasonLabel(_ reason: String) -> String {
        let words = reason.split(separator: " ").prefix(4).joined(separator: " ")
        return String(words.prefix { !$0.isNumber && $0 != ":" && $0 != "(" }).trimmingCharacters(in: .whitespaces)
    }
}
