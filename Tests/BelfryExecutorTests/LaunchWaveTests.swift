import BelfryConfig
@testable import BelfryExecutor
import BelfryStore
import BelfryTesting
import Foundation
import Synchronization
import Testing

@Suite("Launch waves")
struct LaunchWaveTests {
    @Test("with no run on its way, bookkeeping goes on at once")
    func emptyWave() async {
        let wave = LaunchWave(patience: .seconds(3600))
        await wave.settled()
        #expect(wave.pending == 0)
    }

    @Test("bookkeeping waits until every run of the burst has left; a ticket leaves once")
    func waitsForEveryTicket() async throws {
        let wave = LaunchWave(patience: .seconds(3600))
        let first = wave.ticket()
        let second = wave.ticket()
        let through = Mutex(false)
        let waiter = Task {
            await wave.settled()
            through.withLock { $0 = true }
        }
        first.leave()
        first.leave()  // counted once: the second run is still on its way
        try await Task.sleep(for: .milliseconds(50))
        #expect(wave.pending == 1)
        #expect(!through.withLock { $0 })
        second.leave()
        await waiter.value
        #expect(through.withLock { $0 })
        #expect(wave.pending == 0)
    }

    @Test("work that yields to launches goes on when the wave has started its processes, or once the wave is as old as its limit")
    func yieldToLaunches() async throws {
        let wave = LaunchWave(patience: .seconds(3600))
        await wave.yield(upTo: .seconds(3600))  // no wave: at once
        let ticket = wave.ticket()
        let through = Mutex(false)
        let waiter = Task {
            await wave.yield(upTo: .seconds(3600))
            through.withLock { $0 = true }
        }
        try await Task.sleep(for: .milliseconds(50))
        #expect(!through.withLock { $0 }, "a wave under way holds it")
        ticket.leave()
        await waiter.value
        // A wave whose runs never start holds it until the wave is as old as the limit.
        let stuck = wave.ticket()
        let began = ContinuousClock.now
        await wave.yield(upTo: .milliseconds(80))
        let waited = began.duration(to: .now)
        #expect(waited >= .milliseconds(80))
        #expect(wave.pending == 1)
        stuck.leave()
    }

    @Test("a run stuck on its way holds nobody beyond the patience, and no longer counts")
    func patience() async {
        let wave = LaunchWave(patience: .milliseconds(20))
        let stuck = wave.ticket()
        await wave.settled()
        #expect(wave.pending == 0)
        stuck.leave()
        #expect(wave.pending == 0)
    }

    @Test("runs that wait for a place in their queue leave the wave first: the runs inside are not held back", .timeLimit(.minutes(1)))
    func queuedRunsLeave() async throws {
        let harness = try Harness()
        let job = try task("""
              - name: job
                command: { shell: 'sleep 0.2' }
            """)
        var configured = RunExecutor(store: harness.store, clock: ContinuousClock(), now: { Date() }, random: { 0.5 },
                                     logDirectory: harness.directory.path + "/logs", queues: QueueGate(limits: ["default": 2], clock: ContinuousClock()))
        // No patience to speak of: a run waiting in its queue while holding its ticket would
        // hold the two inside until the time limit.
        configured.launches = LaunchWave(patience: .seconds(3600))
        let executor = configured
        let results = try await withThrowingTaskGroup(of: RunResult.self) { group in
            for _ in 0..<6 {
                var request = RunRequest(task: job, origin: .manual)
                request.launchTicket = executor.launches.ticket()
                group.addTask { [request] in try await executor.run(request) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 6)
        #expect(results.allSatisfy { $0.state == .succeeded })
        #expect(executor.launches.pending == 0)
    }
}
