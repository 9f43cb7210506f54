import BelfryExecutor
import BelfryStore
import Foundation
import Synchronization

/// This daemon's lease as it can trust it: the instant of its last renewal on the monotonic
/// clock. The database decides when a lease expires (its `now()`); the daemon, which cannot
/// read that clock while it is cut off, stops trusting its own lease one second earlier.
///
/// On SQLite (`expires` false) the lease is always trusted: the file's lock keeps any other
/// daemon out, so nobody can take this one's runs over, and a daemon slowed down (a burst of
/// 100,000 runs due at once starves the beat) must not take its own attempts down.
public final class Lease<C: Clock>: Sendable where C.Duration == Duration {
    public let duration: Duration
    let clock: C
    let expires: Bool
    private let renewed: Mutex<C.Instant>

    public init(duration: Duration, clock: C, expires: Bool = true) {
        (self.duration, self.clock, self.expires) = (duration, clock, expires)
        renewed = Mutex(clock.now)
    }

    public func markRenewed() {
        let now = clock.now
        renewed.withLock { $0 = now }
    }

    /// Whether this daemon may still act as the owner of what it claimed: its last renewal is
    /// less than lease − 1 s ago on the monotonic clock (a freeze counts).
    public var isTrusted: Bool { remaining > .zero }

    /// How much longer the lease may be trusted.
    public var remaining: Duration {
        guard expires else { return duration }
        let last = renewed.withLock { $0 }
        return duration - .seconds(1) - last.duration(to: clock.now)
    }
}

/// The daemon's part among the daemons of its store, once a second: renews the lease; fences
/// itself when it cannot trust the lease (its attempts' process groups are taken down, their
/// runs put back in the queue, nothing more is claimed) and joins again as a new node once the
/// database answers; takes over nodes whose lease expired (their runs resumed here); cancels
/// the runs another node asked it to (`overlap: replace`). On SQLite every step is trivial.
public struct Membership<C: Clock>: Sendable where C.Duration == Duration {
    let store: any Store
    let scheduler: Scheduler<C>
    let lease: Lease<C>
    let name: String
    let wallClock: @Sendable () -> Date
    /// Told four times a second how long the lease may be trusted (on PostgreSQL).
    let attemptGuard: AttemptGuardChannel?
    let log: @Sendable (SchedulerEvent) -> Void

    public init(store: any Store, scheduler: Scheduler<C>, lease: Lease<C>, name: String, wallClock: @escaping @Sendable () -> Date,
                attemptGuard: AttemptGuardChannel? = nil, log: @escaping @Sendable (SchedulerEvent) -> Void) {
        (self.store, self.scheduler, self.lease, self.name, self.wallClock, self.log) = (store, scheduler, lease, name, wallClock, log)
        self.attemptGuard = attemptGuard
    }

    /// Where the daemon stands between two beats.
    public final class State: Sendable {
        /// Fenced: it must join again before it claims anything. Set by the beat or by the watch.
        let fenced = InterruptFlag()
        /// The database failed at the last beat (logged once).
        let unreachable = InterruptFlag()
        public init() {}
    }

    /// One beat a second until cancelled, and a watch on the lease four times a second that
    /// does not wait for the database: a node cut off in the middle of a call still fences
    /// itself in time.
    public func run(every period: Duration = .seconds(1), sleep: @escaping @Sendable (Duration) async throws -> Void) async {
        let state = State()
        let watch = Task { [self] in
            while !Task.isCancelled {
                await fenceIfUntrusted(state)
                do { try await sleep(period / 4) } catch { return }
            }
        }
        defer { watch.cancel() }
        while !Task.isCancelled {
            await beat(state)
            do { try await sleep(period) } catch { return }
        }
    }

    /// Fences the daemon (once) when its lease can no longer be trusted; while it can, tells
    /// the attempt guard for how long.
    private func fenceIfUntrusted(_ state: State) async {
        let remaining = lease.remaining
        guard remaining <= .zero else {
            if !state.fenced.isSet { attemptGuard?.trust(remaining) }
            return
        }
        await fence(state, reason: "the lease could not be renewed for \(lease.duration - .seconds(1))")
    }

    private func fence(_ state: State, reason: String) async {
        guard !state.fenced.set() else { return }
        log(.fenced(reason: reason))
        await scheduler.fence()
    }

    /// One beat. A daemon that finds its lease untrusted (cut off, or frozen longer than the
    /// lease) takes its attempts down before it does anything else. Each call to the database
    /// is given a second or two: a node cut off does not wait for TCP to give up.
    public func beat(_ state: State) async {
        await fenceIfUntrusted(state)
        do {
            if state.fenced.isSet {
                try await within(.seconds(2)) { try await store.join(name: name, lease: lease.duration) }
                lease.markRenewed()
                state.fenced.clear()
                await scheduler.unfence()
                log(.joined(node: name))
            } else if let share = try await within(.seconds(1), { try await store.renewLease() }) {
                lease.markRenewed()
                await scheduler.share(share)
            } else {
                await fence(state, reason: "the lease expired and may have been taken over")
                return
            }
            if state.unreachable.isSet { log(.storeRecovered) }
            state.unreachable.clear()
            // A daemon that is stopping keeps its lease for its running jobs, but takes nothing over.
            guard await !scheduler.isStopping else { return }
            let (runs, nodes) = try await within(.seconds(2)) { try await store.takeOverLostNodes(at: wallClock()) }
            for node in nodes { log(.nodeTakenOver(node: node)) }
            if !runs.isEmpty { try await scheduler.resume(runs) }
            let cancels = try await within(.seconds(1)) { try await store.cancelRequests() }
            if !cancels.isEmpty { await scheduler.cancel(runs: cancels) }
        } catch {
            if !state.unreachable.set() { log(.storeFailed(reason: "\(error)")) }
        }
    }
}

/// No answer from the store within the time given.
struct StoreTimeout: Error, CustomStringConvertible {
    var description: String { "the database did not answer in time" }
}

/// `operation`'s result, or `StoreTimeout` once `limit` has passed (the operation is left to
/// finish on its own).
public func within<T: Sendable>(_ limit: Duration, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: limit)  // cancellable: the group returns as soon as the operation does
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw StoreTimeout() }
        return value
    }
}
