import Synchronization

/// A one-time gate: `wait` returns once `open` has been called, before or after it started to
/// wait. A run the scheduler holds back waits on one until its queue is close to a place; an
/// attempt waits on one for its process's end and for its output's end.
public final class Latch: Sendable {
    private let state = Mutex<(opened: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    public init() {}

    public func open() {
        let waiters = state.withLock { state in
            state.opened = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    public func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let go = state.withLock { state in
                if state.opened { return true }
                state.waiters.append(continuation)
                return false
            }
            if go { continuation.resume() }
        }
    }
}
