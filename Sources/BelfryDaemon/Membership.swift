import BelfryStore
import Foundation
import Synchronization

/// This daemon's lease as it can trust it: the instant of its last renewal on the monotonic
/// clock. The database decides when a lease expires (its `now()`); the daemon, which cannot
/// read that clock while it is cut off, stops trusting its own lease one second earlier.
public final class Lease<C: Clock>: Sendable where C.Duration == Duration {
    public let duration: Duration
    let clock: C
    private let renewed: Mutex<C.Instant>

    public init(duration: Duration, clock: C) {
        (self.duration, self.clock) = (duration, clock)
        renewed = Mutex(clock.now)
    }

    public func markRenewed() {
        let now = clock.now
        renewed.withLock { $0 = now }
    }

    /// Whether this daemon may still act as the owner of what it claimed: its last renewal is
    /// less than lease − 1 s ago on the monotonic clock (a freeze counts).
    public var isTrusted: Bool {
        let last = renewed.withLock { $0 }
        return last.duration(to: clock.now) < duration - .seconds(1)
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
    let log: @Sendable (SchedulerEvent) -> Void

    public init(store: any Store, scheduler: Scheduler<C>, lease: Lease<C>, name: String, wallClock: @escaping @Sendable () -> Date,
                log: @escaping @Sendable (SchedulerEvent) -> Void) {
        (self.store, self.scheduler, self.lease, self.name, self.wallClock, self.log) = (store, scheduler, lease, name, wallClock, log)
    }

    /// Where the daemon stands between two beats.
    public struct State: Sendable {
        /// Fenced: it must join again before it claims anything.
        var fenced = false
        /// The database failed at the last beat (logged once).
        var unreachable = false
        public init() {}
    }

    /// One beat a second until cancelled.
    public func run(every period: Duration = .seconds(1), sleep: @Sendable (Duration) async throws -> Void) async {
        var state = State()
        while !Task.isCancelled {
            await beat(&state)
            do { try await sleep(period) } catch { return }
        }
    }

    /// One beat. A daemon that finds its lease untrusted (cut off, or frozen longer than the
    /// lease) takes its attempts down before it does anything else.
    public func beat(_ state: inout State) async {
        if !state.fenced, !lease.isTrusted {
            state.fenced = true
            log(.fenced(reason: "the lease could not be renewed for \(lease.duration - .seconds(1))"))
            await scheduler.fence()
        }
        do {
            if state.fenced {
                try await store.join(name: name, lease: lease.duration)
                lease.markRenewed()
                state.fenced = false
                await scheduler.unfence()
                log(.joined(node: name))
            } else if try await store.renewLease() {
                lease.markRenewed()
            } else {
                state.fenced = true
                log(.fenced(reason: "the lease expired and may have been taken over"))
                await scheduler.fence()
                return
            }
            if state.unreachable { log(.storeRecovered) }
            state.unreachable = false
            let (runs, nodes) = try await store.takeOverLostNodes(at: wallClock())
            for node in nodes { log(.nodeTakenOver(node: node)) }
            if !runs.isEmpty { try await scheduler.resume(runs) }
            let cancels = try await store.cancelRequests()
            if !cancels.isEmpty { await scheduler.cancel(runs: cancels) }
        } catch {
            if !state.unreachable { log(.storeFailed(reason: "\(error)")) }
            state.unreachable = true
        }
    }
}
