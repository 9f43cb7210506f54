/// Elements in order of arrival. Taking the first, and taking one out by the ticket `append`
/// gave it, are O(1): 100,000 runs due at once wait in these.
public struct ArrivalQueue<Element> {
    private var entries: [Element?] = []
    private var head = 0
    /// The ticket of `entries[0]`.
    private var base = 0
    public private(set) var count = 0

    public init() {}

    public var isEmpty: Bool { count == 0 }

    @discardableResult
    public mutating func append(_ element: Element) -> Int {
        entries.append(element)
        count += 1
        return base + entries.count - 1
    }

    public mutating func removeFirst() -> Element? {
        while head < entries.count {
            let element = entries[head]
            entries[head] = nil
            head += 1
            if let element {
                count -= 1
                compact()
                return element
            }
        }
        return nil
    }

    /// The element of `ticket`, if it is still waiting.
    public mutating func remove(ticket: Int) -> Element? {
        let index = ticket - base
        guard index >= head, index < entries.count, let element = entries[index] else { return nil }
        entries[index] = nil
        count -= 1
        return element
    }

    /// Drops the taken entries once they are half of the array.
    private mutating func compact() {
        guard head > 1024, head * 2 > entries.count else { return }
        entries.removeFirst(head)
        base += head
        head = 0
    }
}
