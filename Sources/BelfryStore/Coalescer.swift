import Synchronization

/// Writes of one kind asked for while an earlier batch of them is under way wait for it and then
/// go together, as one statement or transaction: 200 runs due in the same second take a few
/// round trips to PostgreSQL, or a few SQLite commits, not 200 one after the other.
public final class Coalescer<Item: Sendable, Output: Sendable>: Sendable {
    private struct Waiting {
        var item: Item
        var continuation: CheckedContinuation<Output, any Error>
    }

    private struct Line {
        var waiting: [Waiting] = []
        var running = false
    }

    private let lines = Mutex<[String: Line]>([:])

    public init() {}

    /// `item`'s output from `perform`, which takes a batch of the items given under `key` and
    /// returns their outputs in the same order.
    public func submit(_ key: String, _ item: Item, perform: @escaping @Sendable ([Item]) async throws -> [Output]) async throws -> Output {
        try await withCheckedThrowingContinuation { continuation in
            let start = lines.withLock { lines in
                lines[key, default: Line()].waiting.append(Waiting(item: item, continuation: continuation))
                defer { lines[key]!.running = true }
                return !lines[key]!.running
            }
            if start { Task { await self.drain(key, perform: perform) } }
        }
    }

    private func drain(_ key: String, perform: @Sendable ([Item]) async throws -> [Output]) async {
        while true {
            let batch = lines.withLock { lines -> [Waiting] in
                let waiting = lines[key]!.waiting
                if waiting.isEmpty { lines[key] = nil } else { lines[key]!.waiting = [] }
                return waiting
            }
            guard !batch.isEmpty else { return }
            do {
                let outputs = try await perform(batch.map(\.item))
                precondition(outputs.count == batch.count, "a batch's outputs are one per item")
                for (waiting, output) in zip(batch, outputs) { waiting.continuation.resume(returning: output) }
            } catch {
                for waiting in batch { waiting.continuation.resume(throwing: error) }
            }
        }
    }
}
