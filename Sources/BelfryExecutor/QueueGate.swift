import Foundation

/// Named queues, each letting at most `limit` runs through at once (SPEC §4); the others wait in
/// order of arrival. A run that waits longer than its `max_queued_time` gives up.
public actor QueueGate<C: Clock> where C.Duration == Duration {
    private struct Queue {
        var limit: Int
        var running = 0
        var waiting: [(id: UUID, continuation: CheckedContinuation<Bool, Never>)] = []
    }

    private let clock: C
    private var queues: [String: Queue] = [:]
    /// The limit of a queue nobody declared.
    public static var defaultLimit: Int { 16 }

    /// `limits`: concurrency per queue name, as deployed.
    public init(limits: [String: Int], clock: C) {
        self.clock = clock
        for (name, limit) in limits { queues[name] = Queue(limit: max(1, limit)) }
    }

    /// Waits for a place in `queue`; false when `maxWait` passed first (the run is not admitted).
    public func enter(_ queue: String, maxWait: Duration?) async -> Bool {
        var state = queues[queue] ?? Queue(limit: Self.defaultLimit)
        if state.running < state.limit, state.waiting.isEmpty {
            state.running += 1
            queues[queue] = state
            return true
        }
        queues[queue] = state
        let id = UUID()
        if let maxWait {
            Task { [clock] in
                try? await clock.sleep(for: maxWait)
                self.giveUp(id, in: queue)
            }
        }
        return await withCheckedContinuation { continuation in
            queues[queue, default: Queue(limit: Self.defaultLimit)].waiting.append((id, continuation))
        }
    }

    /// Frees a place in `queue` and lets the longest waiter in.
    public func leave(_ queue: String) {
        guard var state = queues[queue] else { return }
        if state.waiting.isEmpty {
            state.running = max(0, state.running - 1)
        } else {
            state.waiting.removeFirst().continuation.resume(returning: true)  // its place is the one freed
        }
        queues[queue] = state
    }

    /// The most runs `queue` lets through at once.
    public func limit(of queue: String) -> Int { queues[queue]?.limit ?? Self.defaultLimit }

    /// How many runs are in `queue` and how many wait.
    public func load(of queue: String) -> (running: Int, waiting: Int) {
        (queues[queue]?.running ?? 0, queues[queue]?.waiting.count ?? 0)
    }

    /// Every queue declared or used so far, with its load.
    public func loads() -> [String: (running: Int, waiting: Int)] {
        queues.mapValues { ($0.running, $0.waiting.count) }
    }

    private func giveUp(_ id: UUID, in queue: String) {
        guard var state = queues[queue], let index = state.waiting.firstIndex(where: { $0.id == id }) else { return }
        state.waiting.remove(at: index).continuation.resume(returning: false)
        queues[queue] = state
    }
}
