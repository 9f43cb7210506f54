import BelfrySchedule
import Foundation
import Prometheus
import Synchronization

/// The daemon's metrics, in Prometheus's text format at `/metrics`. The daemon reports what
/// happens (runs ending, slots not run, failures of the store, clock jumps); gauges of what
/// is (triggers, runs in flight) are read when scraped.
public final class MetricsExporter: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let gauges: @Sendable () async -> (activeTriggers: Int, running: Int)
    /// Per trigger: its next slot and when its last success finished; nil: no per-trigger series.
    private let perTrigger: (@Sendable () async -> [(task: String, trigger: String, next: Instant?, lastSuccess: Date?)])?
    private let storeErrors: Counter
    private let clockJumps: Counter
    private let activeTriggers: Gauge
    private let running: Gauge

    /// `gauges` is read at each scrape.
    public init(
        version: String, gauges: @escaping @Sendable () async -> (activeTriggers: Int, running: Int),
        perTrigger: (@Sendable () async -> [(task: String, trigger: String, next: Instant?, lastSuccess: Date?)])? = nil
    ) {
        self.gauges = gauges
        self.perTrigger = perTrigger
        registry.makeGauge(descriptor: Self.name("build", "info", "Always 1: the running version."), labels: [("version", version)]).set(to: 1)
        storeErrors = registry.makeCounter(descriptor: Self.name("store_errors", "total", "Times the database failed under the daemon."))
        clockJumps = registry.makeCounter(descriptor: Self.name("wall_clock_jumps", "total", "Wall-clock jumps noticed."))
        activeTriggers = registry.makeGauge(descriptor: Self.name("triggers", "", "Triggers the daemon schedules."), labels: [("active", "true")])
        running = registry.makeGauge(descriptor: Self.name("runs", "running", "Runs this daemon is running now."))
    }

    /// A run ended (or went back to the queue).
    public func runFinished(task: String, state: String) {
        registry.makeCounter(descriptor: Self.name("runs", "total", "Runs that ended, by task and state."), labels: [("task", task), ("state", state)])
            .increment()
    }

    /// A slot recorded `missed` or `skipped`.
    public func slotNotRun(task: String, state: String, reason: String) {
        let name = Self.name(state == "missed" ? "slots_missed" : "slots_skipped", "total", "Slots not run, by task and reason.")
        registry.makeCounter(descriptor: name, labels: [("task", task), ("reason", Self.reasonLabel(reason))]).increment()
    }

    public func storeFailed() { storeErrors.increment() }

    public func clockJumped() { clockJumps.increment() }

    /// The page `/metrics` serves.
    public func scrape() async -> [UInt8] {
        let now = await gauges()
        activeTriggers.set(to: Double(now.activeTriggers))
        running.set(to: Double(now.running))
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
