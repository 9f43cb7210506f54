import ArgumentParser
import BelfryCommandLine
import BelfryConfig
import BelfryDaemon
import BelfryHTTP
import BelfryExecutor
import BelfrySchedule
import BelfryStore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization


/// `belfry daemon`: deploys the schedules directory and runs every active trigger at its slots.
struct DaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Run every active trigger at its slots, in the foreground (deploying the schedules directory first: always on SQLite, with --deploy on PostgreSQL).",
        discussion: "SIGHUP re-deploys the directory (a bad directory is logged and the running schedule kept). SIGTERM or Ctrl-C stops launching, lets running jobs finish for --shutdown-grace, then takes their process groups down and exits 0. On a SQLite file one daemon runs at a time; on a PostgreSQL database any number of daemons (nodes) share the schedule, each slot run once by one of them.")

    @OptionGroup var schedules: SchedulesOptions
    @OptionGroup var database: DatabaseOptions
    @Option(help: "text or json.") var logFormat = "text"
    @Option(help: "The least level logged: debug, info, notice, warning (what deserves attention), error or critical.") var logLevel = "info"
    @Option(help: "How long running jobs may take to finish at shutdown.") var shutdownGrace = "30s"
    @Option(help: "This daemon's name among the nodes sharing a PostgreSQL database. Default: HOST:PID.") var nodeName: String?
    @Option(help: "How long this node's lease lasts without renewal (renewed every second) before another node takes it over.")
    var lease = "5s"
    @Flag(help: "With a PostgreSQL database: deploy the schedules directory at start (and at SIGHUP). With SQLite the daemon always deploys.")
    var deploy = false
    @OptionGroup var httpOptions: HTTPOptions

    func run() async throws {
        guard let format = BelfryLogHandler.Format(rawValue: logFormat) else { throw CommandFailure("--log-format must be text or json, not \"\(logFormat)\"") }
        let grace: Int64
        let leaseMilliseconds: Int64
        do {
            grace = try DurationText.milliseconds(shutdownGrace, field: "--shutdown-grace")
            leaseMilliseconds = try DurationText.milliseconds(lease, field: "--lease")
        } catch { throw CommandFailure(error) }
        guard leaseMilliseconds >= 2000 else { throw CommandFailure("--lease must be at least 2s (it is renewed every second), not \(lease)") }
        guard let level = Logger.Level(rawValue: logLevel), level != .trace else {
            throw CommandFailure("--log-level must be debug, info, notice, warning, error or critical, not \"\(logLevel)\"")
        }
        let log = Logger(label: "belfry") { _ in
            var handler = BelfryLogHandler(format: format)
            handler.logLevel = level
            return handler
        }
        // Two malloc arenas, not 8 per core: every job's threads (output, wait) would otherwise
        // spread the daemon's small allocations over arenas that are seldom given back.
        GlibcMalloc.limitArenas(to: 2)
        let store = try await database.open()
        let name = nodeName ?? "\(ProcessInfo.processInfo.hostName):\(getpid())"
        let clock = ContinuousClock()
        let lease = Lease(duration: .milliseconds(leaseMilliseconds), clock: clock, expires: database.isShared)
        do { try await store.join(name: name, lease: lease.duration) } catch { throw CommandFailure("\(error)") }
        lease.markRenewed()

        // One deploy for a cluster is `belfry deploy`; a node deploys only when told to.
        let deploys = deploy || !database.isShared
        if deploys {
            try await Self.deploy(schedules, to: store, log: log)
        } else {
            await Self.compare(schedules, with: store, log: log)
        }
        let interrupted = try await store.interruptedRuns(maxSystemRetries: 3, at: Date())
        var executor = RunExecutor(
            store: store, clock: clock, now: { Date() }, random: { Double.random(in: 0..<1) }, logDirectory: store.logDirectory,
            queues: QueueGate(limits: try await store.queueLimits(), clock: clock))
        executor.baseEnvironment = database.jobEnvironment(ProcessInfo.processInfo.environment)
        executor.leaseTrusted = { lease.isTrusted }
        executor.steps = await Self.openStepChannel(store: store, log: log)
        let activeTriggers = Mutex(0)
        let schedulerBox = Mutex<Scheduler<ContinuousClock>?>(nil)
        let seriesPerTrigger: (@Sendable () async -> [(task: String, trigger: String, next: Instant?, lastSuccess: Date?)])?
        if httpOptions.metricsPerTrigger {
            seriesPerTrigger = { () async -> [(task: String, trigger: String, next: Instant?, lastSuccess: Date?)] in
                guard let scheduler = schedulerBox.withLock({ $0 }) else { return [] }
                let slots = await scheduler.nextSlots
                let successes = (try? await store.lastSuccesses()) ?? [:]
                return slots.map { (task: $0.task, trigger: $0.trigger, next: $0.next, lastSuccess: successes[$0.task + " " + $0.trigger]) }
            }
        } else {
            seriesPerTrigger = nil
        }
        let queues = executor.queues
        let isShared = database.isShared
        let metrics = MetricsExporter(build: BuildDescription.labels, read: {
            var reading = MetricsExporter.Reading(activeTriggers: activeTriggers.withLock { $0 }, queues: await queues.loads())
            if isShared {
                reading.nodes = (try? await store.nodes())?.count { $0.leaseUntil > Date() }
                reading.leaseRemaining = lease.remaining
            }
            return reading
        }, perTrigger: seriesPerTrigger)
        executor.events = { event in
            log.log(event)
            switch event {
            case .attemptStarted(let label, let attempt, _, _):
                if attempt == 1, let slot = label.slot { metrics.slotLateness(.milliseconds(Int64((Date().timeIntervalSince1970 - Double(slot.secondsSinceEpoch)) * 1000))) }
            case .attemptEnded(let label, _, let outcome, _, _, _, _): metrics.attemptEnded(task: label.task, outcome: outcome)
            case .runEnded(let label, _, let duration): metrics.runDuration(task: label.task, duration)
            case .circuitChanged(let task, let phase, _): metrics.circuit(task: task, open: phase == "open")
            default: break
            }
        }
        let scheduler = Scheduler(store: store, executor: executor, clock: clock, wallClock: { Date() }, wait: pollWait,
                                  leaseTrusted: { lease.isTrusted }, queueLimits: try await store.queueLimits()) { event in
            log.log(event)
            switch event {
            case .scheduled(let triggers, _, _): activeTriggers.withLock { $0 = triggers }
            case .finished(let task, _, _, let state, let reason):
                metrics.runFinished(task: task, state: state.rawValue)
                if reason == "circuit_open" { metrics.circuit(task: task, open: true) }  // opened before this daemon started
            case .notRun(let task, _, _, let state, let reason): metrics.slotNotRun(task: task, state: state.rawValue, reason: reason)
            case .storeFailed: metrics.storeFailed()
            case .clockJump: metrics.clockJumped()
            default: break
            }
        }
        schedulerBox.withLock { $0 = scheduler }
        try await scheduler.refresh()
        try await scheduler.resume(interrupted)
        GlibcMalloc.trim()  // what reading the triggers and definitions took and freed
        var started: Logger.Metadata = [
            "database": "\(store.location)", "schedules": "\(deploys ? schedules.path : "(not deployed by this node)")", "pid": "\(getpid())",
        ]
        if database.isShared { started["node"] = "\(name)" }
        log.notice("daemon started", metadata: started)
        let schedules = self.schedules
        // Beside a shared store, a process of its own takes this daemon's attempts down if the
        // daemon goes silent (frozen, killed) while its lease runs out.
        let attemptGuard = database.isShared ? Self.startAttemptGuard(log: log) : nil
        let membership = Membership(store: store, scheduler: scheduler, lease: lease, name: name, wallClock: { Date() },
                                    attemptGuard: attemptGuard) { log.log($0) }
        let service = DaemonService(
            scheduler: scheduler, executor: executor, membership: membership, logger: log, shutdownGrace: .milliseconds(grace)
        ) {
            if deploys { try await Self.deploy(schedules, to: store, log: log, cause: "SIGHUP") }
        }
        let stateDirectory = (store.logDirectory as NSString).deletingLastPathComponent
        let http = try httpOptions.server(store: store, stateDirectory: stateDirectory, metrics: metrics, health: { () async -> String? in
            do {
                _ = try await within(.seconds(2)) { try await store.changeCounter() }
                return nil
            } catch {
                return "the database does not answer: \(error)"
            }
        }, actions: HTTPServer.Actions(
            runNow: { task, inputs in try await scheduler.startNow(task, inputs: inputs, origin: .api) },
            cancel: { id in
                if await scheduler.cancelHere(id) { return true }
                return try await store.requestCancel(run: id)  // on PostgreSQL, its node cancels it within a second
            },
            yieldToLaunches: { [launches = executor.launches] in await launches.yield(upTo: .milliseconds(40)) }
        ), changed: { try? await scheduler.refresh() }, log: log)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: service)]
        if let http { services.append(.init(service: http)) }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: log))
        let serving = executor.steps.map { steps in Task { await steps.run() } }
        defer { serving?.cancel() }
        try await group.run()
    }

    /// The socket through which jobs' `belfry step` reaches this daemon. Without it a job's step
    /// opens the database itself (which, on PostgreSQL, it cannot: it has no password).
    static func openStepChannel(store: any Store, log: Logger) async -> StepChannel? {
        do {
            return try await StepChannel.open(directory: store.logDirectory, store: store)
        } catch {
            log.error("the step socket could not be opened: `belfry step` inside jobs will open the database itself", metadata: [
                "directory": "\(store.logDirectory)", "reason": "\(error)",
            ])
            return nil
        }
    }

    private static func startAttemptGuard(log: Logger) -> AttemptGuardChannel? {
        guard let channel = AttemptGuardChannel(executable: CommandLineMain.executable, arguments: ["guard-attempts", "--daemon", "\(getpid())"]) else {
            log.error("the attempt guard could not be started: a frozen daemon's jobs would run on until it wakes")
            return nil
        }
        return channel
    }

    /// A node that does not deploy says when its directory differs from what is deployed, and
    /// how (a node started with other files than the others would otherwise go unnoticed).
    private static func compare(_ schedules: SchedulesOptions, with store: any Store, log: Logger) async {
        guard FileManager.default.fileExists(atPath: schedules.path) else { return }
        // The same files as deployed (the usual case): nothing to parse.
        if let fingerprints = DefinitionLoader.fingerprints(directory: schedules.path),
            let deployed = try? await store.deployedFingerprints(), deployed == fingerprints
        {
            return
        }
        do {
            let summary = try await store.deployPreview(schedules.load())
            guard !(summary.added.isEmpty && summary.changed.isEmpty && summary.deleted.isEmpty) else { return }
            log.warning("the schedules directory differs from what is deployed; this node does not deploy it (belfry deploy, or --deploy)", metadata: [
                "directory": "\(schedules.path)", "would_add": "\(summary.added.joined(separator: ", "))",
                "would_change": "\(summary.changed.joined(separator: ", "))", "would_delete": "\(summary.deleted.joined(separator: ", "))",
            ])
        } catch {
            log.warning("the schedules directory is not valid; this node does not deploy it", metadata: [
                "directory": "\(schedules.path)", "reason": "\(error)",
            ])
        }
    }

    /// Deploys the directory at start or on SIGHUP (`cause`), and says what changed. On SIGHUP a
    /// bad directory's problems are logged one per line (at start they go to stderr, and the
    /// daemon does not start).
    private static func deploy(_ schedules: SchedulesOptions, to store: any Store, log: Logger, cause: String = "start") async throws {
        let summary: DeploySummary
        do {
            summary = try await schedules.deploy(to: store, owner: "belfry daemon") { notice in
                log.log(level: notice.severity == .warning ? .warning : .info, "\(notice.severity.rawValue) in the schedules", metadata: [
                    "position": "\(notice.file):\(notice.line):\(notice.column)", "message": "\(notice.message)",
                ])
            }
        } catch let failure as CommandFailure where cause != "start" {
            for line in failure.lines { log.error("problem in the schedules", metadata: ["problem": "\(line)", "cause": "\(cause)"]) }
            throw failure
        }
        /// Up to 10 names, then how many more.
        func names(_ triggers: [String]) -> Logger.MetadataValue {
            "\(triggers.prefix(10).joined(separator: ", "))\(triggers.count > 10 ? " (and \(triggers.count - 10) more)" : "")"
        }
        var metadata: Logger.Metadata = [
            "directory": "\(schedules.path)", "cause": "\(cause)", "added": "\(summary.added.count)", "changed": "\(summary.changed.count)",
            "deleted": "\(summary.deleted.count)", "active": "\(summary.active)",
        ]
        for (key, triggers) in [("added_triggers", summary.added), ("changed_triggers", summary.changed), ("deleted_triggers", summary.deleted)]
        where !triggers.isEmpty {
            metadata[key] = names(triggers)
        }
        log.notice("schedules deployed", metadata: metadata)
    }
}

/// `belfry guard-attempts --daemon PID` (hidden): the attempt guard a daemon on a shared store
/// starts beside itself, its standard input the daemon's word.
struct GuardAttempts: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "guard-attempts", abstract: "Take a silent daemon's attempts down (started by the daemon itself).", shouldDisplay: false)
    @Option(help: "The daemon's pid.") var daemon: Int32

    func run() {
        AttemptGuard.run(daemon: daemon, input: 0)
    }
}
