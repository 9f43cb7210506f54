import ArgumentParser
import BelfryDaemon
import BelfryExecutor
import BelfrySchedule
import BelfryStore
import Foundation
import Logging

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
        let store = try database.open()
        let lock = try Self.lock(store.path)
        defer { close(lock) }

        try deploy(store, log: log)
        let interrupted = try store.interruptedRuns(at: Date())
        let clock = ContinuousClock()
        let executor = RunExecutor(
            store: store, clock: clock, now: { Date() }, random: { Double.random(in: 0..<1) }, logDirectory: store.logDirectory,
            queues: QueueGate(limits: try store.queueLimits(), clock: clock))
        let scheduler = Scheduler(store: store, executor: executor, clock: clock, wallClock: { Date() }) { log.log($0) }
        try await scheduler.refresh()
        try await scheduler.resume(interrupted)
        let loop = Task { try await scheduler.run() }
        log.notice("daemon started", metadata: ["database": "\(store.path)", "schedules": "\(schedules.path)", "pid": "\(getpid())"])
        let systemd = SystemdNotifier()
        systemd.send("READY=1\nSTATUS=\(await Self.status(scheduler))")
        // STATUS= for `systemctl status`, and WATCHDOG=1 while the scheduler answers.
        let heartbeat = Task {
            let period = min(systemd.watchdogInterval ?? .seconds(5), .seconds(5))
            while !Task.isCancelled {
                try? await Task.sleep(for: period)
                let status = await Self.status(scheduler)
                systemd.send((systemd.watchdogInterval == nil ? "" : "WATCHDOG=1\n") + "STATUS=\(status)")
            }
        }
        defer { heartbeat.cancel() }

        for await signal in Self.signals([SIGTERM, SIGINT, SIGHUP]) {
            if signal == SIGHUP {
                systemd.send("RELOADING=1")
                defer { systemd.send("READY=1") }
                do {
                    try deploy(store, log: log)
                    try await scheduler.refresh()
                } catch {
                    log.error("re-deploy failed; the running schedule is kept", metadata: ["reason": "\(error)"])
                }
                continue
            }
            log.notice("stopping", metadata: ["signal": "\(signal == SIGTERM ? "SIGTERM" : "SIGINT")"])
            systemd.send("STOPPING=1")
            await scheduler.stop()
            loop.cancel()
            let running = await scheduler.runningTasks
            let deadline = ContinuousClock.now + .milliseconds(grace)
            while await scheduler.status.running > 0, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(50))
            }
            if await scheduler.status.running > 0 {
                log.warning("shutdown grace over; interrupting running jobs, to be resumed at the next start", metadata: ["runs": "\(running.count)"])
                executor.shutdown.set()
                for task in running { task.cancel() }
                for task in running { await task.value }
            }
            log.notice("daemon stopped")
            return
        }
    }

    /// `12 active triggers, 1 running, next slot 2026-11-23T12:30:00Z`.
    private static func status(_ scheduler: Scheduler<ContinuousClock>) async -> String {
        let status = await scheduler.status
        return "\(status.triggers) active triggers, \(status.running) running, next slot \(status.nextSlot?.rfc3339 ?? "none")"
    }

    private func deploy(_ store: BelfryDatabase, log: Logger) throws {
        let definitions = try schedules.load()
        let summary = try store.deploy(definitions, owner: "belfry daemon")
        log.notice("schedules deployed", metadata: [
            "directory": "\(schedules.path)", "added": "\(summary.added.count)", "changed": "\(summary.changed.count)",
            "deleted": "\(summary.deleted.count)", "active": "\(summary.active)",
        ])
    }

    /// Holds an exclusive lock beside the database for the life of the process: a second daemon
    /// on the same database refuses to start.
    private static func lock(_ databasePath: String) throws -> Int32 {
        let path = databasePath + ".daemon.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CommandFailure("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            close(fd)
            throw CommandFailure("another belfry daemon (pid \(holder)) is running on \(databasePath)")
        }
        ftruncate(fd, 0)
        let pid = "\(getpid())\n"
        _ = pid.withCString { write(fd, $0, strlen($0)) }
        return fd
    }

    /// The signals as they arrive.
    private static func signals(_ numbers: [Int32]) -> AsyncStream<Int32> {
        /// Keeps the dispatch sources alive as long as the stream.
        final class Sources: @unchecked Sendable {
            var all: [any DispatchSourceSignal] = []
        }
        return AsyncStream { continuation in
            let sources = Sources()
            sources.all = numbers.map { number in
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number)
                source.setEventHandler { continuation.yield(number) }
                source.resume()
                return source
            }
            continuation.onTermination = { _ in sources.all.forEach { $0.cancel() } }
        }
    }
}
