import BelfryExecutor
import BelfryStore
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// The daemon as a swift-service-lifecycle `Service`: runs the scheduler, tells systemd how it
/// is doing, re-deploys on SIGHUP, and on graceful shutdown (SIGTERM, SIGINT, through the
/// service group) stops launching, lets running jobs finish for `shutdownGrace`, then interrupts
/// them (their runs go back to `queued`, resumed at the next start).
public struct DaemonService: Service {
    let scheduler: Scheduler<ContinuousClock>
    let executor: RunExecutor<ContinuousClock>
    let membership: Membership<ContinuousClock>
    let logger: Logger
    let shutdownGrace: Duration
    /// Deploys the schedules directory again (SIGHUP); throws when it is not valid.
    let redeploy: @Sendable () async throws -> Void
    let systemd = SystemdNotifier()

    public init(
        scheduler: Scheduler<ContinuousClock>, executor: RunExecutor<ContinuousClock>, membership: Membership<ContinuousClock>, logger: Logger,
        shutdownGrace: Duration, redeploy: @escaping @Sendable () async throws -> Void
    ) {
        (self.scheduler, self.executor, self.membership, self.logger) = (scheduler, executor, membership, logger)
        (self.shutdownGrace, self.redeploy) = (shutdownGrace, redeploy)
    }

    public func run() async throws {
        let loop = Task { try await scheduler.run() }
        systemd.send("READY=1\nSTATUS=\(await status())")
        let heartbeat = Task { await beat() }
        let reloads = Task { await reloadOnHangUp() }
        let pruning = Task { await pruneHourly() }
        let membership = Task { [membership] in await membership.run(sleep: pollWait) }
        defer {
            membership.cancel()
            heartbeat.cancel()
            reloads.cancel()
            pruning.cancel()
        }
        try? await gracefulShutdown()
        logger.notice("stopping")
        systemd.send("STOPPING=1")
        await scheduler.stop()
        loop.cancel()
        let running = await scheduler.runningTasks
        let deadline = ContinuousClock.now + shutdownGrace
        while await scheduler.status.running > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        if await scheduler.status.running > 0 {
            logger.warning("shutdown grace over; interrupting running jobs, to be resumed at the next start", metadata: ["runs": "\(running.count)"])
            executor.interrupting.set()
            for task in running { task.cancel() }
            for task in running { await task.value }
        }
        membership.cancel()
        await membership.value  // no renewal after the lease is given up
        self.membership.attemptGuard?.stop()
        // Everything of this daemon has ended or is back in the queue: another may take it now.
        try? await scheduler.store.leave()
        logger.notice("daemon stopped")
    }

    /// STATUS= for `systemctl status`, and WATCHDOG=1 while the scheduler answers. When runs
    /// have ended since the last time and none is running, gives the memory they freed back to
    /// the system: glibc keeps it in per-thread arenas otherwise, and a burst of runs would leave
    /// the daemon's resident size high for good (measured: 113 MiB at start, 224 MiB after bursts
    /// of 1,000 runs). Counting ended runs, not sampling running ones, catches a burst that
    /// starts and ends between two beats.
    private func beat() async {
        let period = min(systemd.watchdogInterval ?? .seconds(5), .seconds(5))
        var trims = TrimAfterRuns()
        while !Task.isCancelled {
            try? await Task.sleep(for: period)
            if trims.isDue(running: await scheduler.status.running, finished: await scheduler.finishedRuns) { GlibcMalloc.trim() }
            let status = await status()
            systemd.send((systemd.watchdogInterval == nil ? "" : "WATCHDOG=1\n") + "STATUS=\(status)")
        }
    }

    /// Keeps the history within its policy (SPEC §3): a minute after the start, then hourly.
    private func pruneHourly() async {
        var wait = Duration.seconds(60)
        while (try? await Task.sleep(for: wait)) != nil {
            wait = .seconds(3600)
            do {
                let removed = try await scheduler.store.pruneHistory(HistoryPolicy(), now: Date())
                if removed > 0 { logger.info("history pruned", metadata: ["runs": "\(removed)"]) }
            } catch {
                logger.error("pruning the history failed", metadata: ["reason": "\(error)"])
            }
        }
    }

    private func reloadOnHangUp() async {
        for await _ in await UnixSignalsSequence(trapping: .sighup) {
            systemd.send("RELOADING=1")
            do {
                try await redeploy()
                try await scheduler.refresh()
            } catch {
                logger.error("re-deploy failed; the running schedule is kept", metadata: ["reason": "\(error)"])
            }
            systemd.send("READY=1")
        }
    }

    /// `12 active triggers, 1 running, next slot 2026-11-23T12:30:00Z`.
    private func status() async -> String {
        let status = await scheduler.status
        return "\(status.triggers) active triggers, \(status.running) running, next slot \(status.nextSlot?.rfc3339 ?? "none")"
    }
}

/// When to give freed memory back: once runs have ended since the last time and none is running.
struct TrimAfterRuns {
    private var finishedAtLastTrim = 0

    /// `finished`: how many runs have ended so far.
    mutating func isDue(running: Int, finished: Int) -> Bool {
        guard running == 0, finished != finishedAtLastTrim else { return false }
        finishedAtLastTrim = finished
        return true
    }
}

/// glibc's malloc tuning, which its Swift module does not export (`<malloc.h>`).
public enum GlibcMalloc {
    private typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    private typealias MallocTrim = @convention(c) (Int) -> Int32

    /// At most `count` arenas (glibc's default is 8 per core).
    public static func limitArenas(to count: Int32) {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        _ = unsafeBitCast(symbol, to: Mallopt.self)(-8, count)  // M_ARENA_MAX
    }

    /// Returns the free memory at the top and inside every arena to the system.
    public static func trim() {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return }
        _ = unsafeBitCast(symbol, to: MallocTrim.self)(0)
    }
}
