import ArgumentParser
import BelfryDaemon
import BelfryExecutor
import BelfrySchedule
import BelfryStore
import Foundation
import Logging
import ServiceLifecycle

/// `belfry daemon`: deploys the schedules directory and runs every active trigger at its slots.
struct DaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Deploy the schedules directory and run every active trigger at its slots, in the foreground.",
        discussion: "SIGHUP re-deploys the directory (a bad directory is logged and the running schedule kept). SIGTERM or Ctrl-C stops launching, lets running jobs finish for --shutdown-grace, then takes their process groups down and exits 0. Only one daemon runs on a database at a time.")

    @OptionGroup var schedules: SchedulesOptions
    @OptionGroup var database: DatabaseOptions
    @Option(help: "text or json.") var logFormat = "text"
    @Option(help: "How long running jobs may take to finish at shutdown.") var shutdownGrace = "30s"

    func run() async throws {
        guard let format = BelfryLogHandler.Format(rawValue: logFormat) else { throw CommandFailure("--log-format must be text or json, not \"\(logFormat)\"") }
        let grace: Int64
        do { grace = try DurationText.milliseconds(shutdownGrace, field: "--shutdown-grace") } catch { throw CommandFailure(error) }
        let log = Logger(label: "belfry") { _ in BelfryLogHandler(format: format) }
        // Two malloc arenas, not 8 per core: every job's threads (output, wait) would otherwise
        // spread the daemon's small allocations over arenas that are seldom given back.
        GlibcMalloc.limitArenas(to: 2)
        let store = try await database.open()
        do { try await store.join(name: "\(ProcessInfo.processInfo.hostName):\(getpid())", lease: .seconds(5)) } catch { throw CommandFailure("\(error)") }

        try await Self.deploy(schedules, to: store, log: log)
        let interrupted = try await store.interruptedRuns(maxSystemRetries: 3, at: Date())
        let clock = ContinuousClock()
        let executor = RunExecutor(
            store: store, clock: clock, now: { Date() }, random: { Double.random(in: 0..<1) }, logDirectory: store.logDirectory,
            queues: QueueGate(limits: try await store.queueLimits(), clock: clock))
        let scheduler = Scheduler(store: store, executor: executor, clock: clock, wallClock: { Date() }, wait: pollWait) { log.log($0) }
        try await scheduler.refresh()
        try await scheduler.resume(interrupted)
        log.notice("daemon started", metadata: ["database": "\(store.location)", "schedules": "\(schedules.path)", "pid": "\(getpid())"])
        let schedules = self.schedules
        let service = DaemonService(
            scheduler: scheduler, executor: executor, logger: log, shutdownGrace: .milliseconds(grace)
        ) { try await Self.deploy(schedules, to: store, log: log) }
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: service)], gracefulShutdownSignals: [.sigterm, .sigint], logger: log))
        try await group.run()
    }

    private static func deploy(_ schedules: SchedulesOptions, to store: any Store, log: Logger) async throws {
        let summary = try await schedules.deploy(to: store, owner: "belfry daemon")
        log.notice("schedules deployed", metadata: [
            "directory": "\(schedules.path)", "added": "\(summary.added.count)", "changed": "\(summary.changed.count)",
            "deleted": "\(summary.deleted.count)", "active": "\(summary.active)",
        ])
    }
}
