import Synchronization

/// The runs on their way to their first process. When many slots fall due at once, each run's
/// bookkeeping after its process has started (recording the pid, the thread that reads its
/// output, the log line) waits until every run of the burst has started its process: the
/// bookkeeping of the first runs would otherwise delay the start of the last ones, on a machine
/// whose cores the burst fills.
///
/// Only an order, never a condition of correctness: an attempt whose pid is not recorded yet is
/// found at the next start by its environment, and a wave that does not settle within
/// `patience` (a run stuck before its start) lets everyone through.
public final class LaunchWave: Sendable {
    private struct State {
        var pending = 0
        /// When `pending` last rose from 0: the wave's start.
        var began = ContinuousClock.now
        var waiters: [CheckedContinuation<Void, Never>] = []
        var deadlineArmed = false
        /// Counts releases: a deadline armed for waiters already let through lets nobody else.
        var generation = 0
    }

    private let state = Mutex(State())
    private let patience: Duration

    public init(patience: Duration = .milliseconds(500)) {
        self.patience = patience
    }

    /// A run joins the wave: it is on its way to its first process. Its ticket leaves once.
    public func ticket() -> Ticket {
        state.withLock { state in
            if state.pending == 0 { state.began = .now }
            state.pending += 1
        }
        return Ticket(wave: self)
    }

    /// Returns once no run is on its way to its first process, or once the wave under way is
    /// `limit` old: work that can wait a little (an API request) lets the first of a burst's
    /// processes start before it, and never waits longer than `limit` for a whole burst.
    public func yield(upTo limit: Duration) async {
        while let began = state.withLock({ $0.pending > 0 ? $0.began : nil }), began + limit > .now {
            try? await Task.sleep(for: .milliseconds(1))
        }
    }

    /// Returns once no run is on its way to its first process (at once in the usual case), or
    /// after `patience`.
    func settled() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            // nil: go on; else whether to arm the deadline, and for which generation.
            let decision = state.withLock { state -> (arm: Bool, generation: Int)? in
                guard state.pending > 0 else { return nil }
                state.waiters.append(continuation)
                defer { state.deadlineArmed = true }
                return (!state.deadlineArmed, state.generation)
            }
            guard let decision else { return continuation.resume() }
            if decision.arm {
                Task { [patience] in
                    try? await Task.sleep(for: patience)
                    self.release(onDeadlineOf: decision.generation)
                }
            }
        }
    }

    /// How many runs are on their way.
    var pending: Int { state.withLock { $0.pending } }

    fileprivate func leave() {
        let settled = state.withLock { state in
            state.pending = max(0, state.pending - 1)
            return state.pending == 0
        }
        if settled { release(onDeadlineOf: nil) }
    }

    /// Lets every waiter through. On the deadline (`generation`: the one it was armed for) the
    /// wave is also emptied: runs still on their way (stuck) stop holding anyone back.
    private func release(onDeadlineOf generation: Int?) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            if let generation {
                guard generation == state.generation else { return [] }
                state.pending = 0
            }
            state.generation += 1
            state.deadlineArmed = false
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// One run's place in the wave: it leaves when the run's process has started, when the run
    /// is about to wait (for a place in its queue), or when it ends, whichever comes first.
    public final class Ticket: Sendable {
        private let wave: LaunchWave
        private let left = Atomic(false)

        fileprivate init(wave: LaunchWave) {
            self.wave = wave
        }

        public func leave() {
            guard left.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
            wave.leave()
        }
    }
}
