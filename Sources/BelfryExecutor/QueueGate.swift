/// Named queues, each letting at most `limit` runs through at once (SPEC §4); the others wait in
/// order of arrival. A run that waits longer than its `max_queued_time` gives up.
public actor QueueGate<C: Clock> where C.Duration == Duration {
    private struct Queue {
        var limit: Int
        var running = 0
        var waiting = ArrivalQueue<CheckedContinuation<Bool, Never>>()
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
    ///
    /// The queues are changed in place, never copied out and back: a copy held by a waiting run
    /// keeps the waiting list of its moment alive, which made 10,000 runs waiting at once hold
    /// 1.3 GB (each a copy of the list before it).
    /// `beforeWaiting` is called when the run has to wait.
    public func enter(_ queue: String, maxWait: Duration?, beforeWaiting: @Sendable () -> Void = {}) async -> Bool {
        if queues[queue] == nil { queues[queue] = Queue(limit: Self.defaultLimit) }
        if queues[queue]!.running < queues[queue]!.limit, queues[queue]!.waiting.isEmpty {
            queues[queue]!.running += 1
            return true
        }
        beforeWaiting()
        return await withCheckedContinuation { continuation in
            let ticket = queues[queue]!.waiting.append(continuation)
            if let maxWait {
                Task { [clock] in
                    try? await clock.sleep(for: maxWait)
                    self.giveUp(ticket, in: queue)
                }
            }
        }
    }

    /// Frees a place in `queue` and lets the longest waiter in.
    public func leave(_ queue: String) {
        guard queues[queue] != nil else { return }
        if let next = queues[queue]!.waiting.removeFirst() {
            next.resume(returning: true)  // its place is the one freed
        } else {
            queues[queue]!.running = max(0, queues[queue]!.running - 1)
        }
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

    private func giveUp(_ ticket: Int, in queue: String) {
        queues[queue]?.waiting.remove(ticket: ticket)?.resume(returning: false)
    }
}
