import Foundation
import Prometheus
import Synchronization

/// The daemon's metrics, in Prometheus's text format at `/metrics`. The daemon reports what
/// happens (runs ending, slots not run, failures of the store, clock jumps); gauges of what
/// is (triggers, runs in flight) are read when scraped.
public final class MetricsExporter: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let gauges: @Sendable () async -> (activeTriggers: Int, running: Int)
    private let storeErrors: Counter
    private let clockJumps: Counter
    private let activeTriggers: Gauge
    private let running: Gauge

    /// `gauges` is read at each scrape.
    public init(version: String, gauges: @escaping @Sendable () async -> (activeTriggers: Int, running: Int)) {
        self.gauges = gauges
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
        return buffer
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
