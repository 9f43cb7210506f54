import Foundation

/// Threads for work that blocks (an attempt's output read until end of file, a wait in `poll` or
/// `waitid`), kept once their work is done and given the next: a thread started and ended for
/// each attempt (its creation, its thread-local data's teardown at exit) was a twentieth of the
/// daemon's CPU in a burst of due runs. A thread idle for a minute ends.
final class BlockingThreads: @unchecked Sendable {
    static let shared = BlockingThreads()

    private let condition = NSCondition()
    private var pending: [@Sendable () -> Void] = []  // guarded by `condition`
    private var idle = 0  // threads waiting for work, guarded by `condition`
    private let idleLimit: TimeInterval

    init(idleLimit: TimeInterval = 60) {
        self.idleLimit = idleLimit
    }

    /// Runs `work` on a kept thread, or a new one when none is idle.
    func run(_ work: @escaping @Sendable () -> Void) {
        condition.lock()
        pending.append(work)
        let start = idle < pending.count  // every idle thread already has work to take
        if !start { condition.signal() }
        condition.unlock()
        guard start else { return }
        let thread = Thread { [self] in serve() }
        thread.name = "belfry-blocking"
        thread.start()
    }

    /// How many threads wait for work (for tests).
    var idleThreads: Int { condition.withLock { idle } }

    private func serve() {
        condition.lock()
        while true {
            while pending.isEmpty {
                idle += 1
                let signalled = condition.wait(until: Date(timeIntervalSinceNow: idleLimit))
                idle -= 1
                if !signalled, pending.isEmpty {
                    condition.unlock()
                    return
                }
            }
            let work = pending.removeFirst()
            condition.unlock()
            work()
            condition.lock()
        }
    }
}
