import BelfryConfig
import Foundation
import Synchronization

/// Definitions decoded from their stored JSON, by those exact bytes: the runs of a trigger that
/// fires often decode its definitions once. Holds at most `capacity` pairs, the oldest dropped
/// first, so that 100,000 triggers firing once a day do not all stay in memory.
public final class DecodedDefinitions: Sendable {
    private struct Key: Hashable {
        var task: Data
        var trigger: Data
    }

    private struct State {
        var decoded: [Key: (TaskDefinition, TriggerDefinition)] = [:]
        var order: [Key] = []  // insertion order, a ring once full
        var oldest = 0
    }

    public let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int = 1024) {
        self.capacity = max(1, capacity)
    }

    public var count: Int { state.withLock { $0.decoded.count } }

    func lookUp(task: Data, trigger: Data) -> (task: TaskDefinition, trigger: TriggerDefinition)? {
        state.withLock { $0.decoded[Key(task: task, trigger: trigger)] }
    }

    func store(_ decoded: (task: TaskDefinition, trigger: TriggerDefinition), task: Data, trigger: Data) {
        let key = Key(task: task, trigger: trigger)
        state.withLock { state in
            guard state.decoded.updateValue(decoded, forKey: key) == nil else { return }
            if state.order.count < capacity {
                state.order.append(key)
            } else {
                state.decoded[state.order[state.oldest]] = nil
                state.order[state.oldest] = key
                state.oldest = (state.oldest + 1) % capacity
            }
        }
    }
}
