import Foundation

/// Named queues, each letting at most `limit` runs through at once (SPEC §4); the others wait in
/// order of arrival. A run that waits longer than its `max_queued_time` gives up.
public actor QueueGate<C: Clock> where C.Duration == Duration {
    private struct Queue {
        var limit: Int
        var running = 0
        var waiting = Waiters()
    }

    /// Runs waiting for a place, in order of arrival: taking the first and giving one up are
    /// O(1) (100,000 runs due at once wait here).
    private struct Waiters {
        private var entries: [(id: Int, continuation: CheckedContinuation<Bool, Never>)?] = []
        private var head = 0
        private var positions: [Int: Int] = [:]  // id → index in entries
        private(set) var count = 0

        var isEmpty: Bool { count == 0 }

        mutating func append(_ id: Int, _ continuation: CheckedContinuation<Bool, Never>) {
            positions[id] = entries.count
            entries.append((id, continuation))
            count += 1
        }

        mutating func removeFirst() -> CheckedContinuation<Bool, Never>? {
            while head < entries.count {
                let entry = entries[head]
                entries[head] = nil
                head += 1
                if let entry {
                    positions[entry.id] = nil
                    count -= 1
                    compact()
                    return entry.continuation
                }
            }
            return nil
        }

        mutating func remove(_ id: Int) -> CheckedContinuation<Bool, Never>? {
            guard let index = positions.removeValue(forKey: id), let entry = entries[index] else { return nil }
            entries[index] = nil
            count -= 1
            return entry.continuation
        }

        /// Drops the taken entries once they are half of the array.
        private mutating func compact() {
            guard head > 1024, head * 2 > entries.count else { return }
            entries.removeFirst(head)
            head = 0
            positions = [:]
            for (index, entry) in entries.enumerated() { if let entry { positions[entry.id] = index } }
        }
    }

    private let clock: C
    private var queues: [String: Queue] = [:]
    private var nextID = 0
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
    public func enter(_ queue: String, maxWait: Duration?) async -> Bool {
        if queues[queue] == nil { queues[queue] = Queue(limit: Self.defaultLimit) }
        if queues[queue]!.running < queues[queue]!.limit, queues[queue]!.waiting.isEmpty {
            queues[queue]!.running += 1
            return true
        }
        nextID += 1
        let id = nextID
        if let maxWait {
            Task { [clock] in
                try? await clock.sleep(for: maxWait)
                self.giveUp(id, in: queue)
            }
        }
        return await withCheckedContinuation { continuation in
            queues[queue]!.waiting.append(id, continuation)
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

    private func giveUp(_ id: Int, in queue: String) {
        queues[queue]?.waiting.remove(id)?.resume(returning: false)
    }
}
