import BelfryConfig
@testable import BelfryExecutor
import BelfryStore
import BelfryTesting
import Foundation
import Testing

@Suite("Queues")
struct QueueTests {
    @Test("a queue runs at most its limit at once; the others wait their turn")
    func concurrencyLimit() async throws {
        let harness = try Harness()
        let marks = harness.directory.path + "/marks"
        // Each run notes how many runs were inside at its start.
        let job = try task("""
              - name: job
                command: { shell: 'echo start >> \(marks); n=$(grep -c start \(marks)); m=$(grep -c end \(marks) || true); echo $((n - m)) >> \(marks).inside; sleep 0.3; echo end >> \(marks)' }
            """)
        let gate = QueueGate(limits: ["default": 2], clock: ContinuousClock())
        var configured = RunExecutor(store: harness.store, clock: ContinuousClock(), now: { Date() }, random: { 0.5 },
                                     logDirectory: harness.directory.path + "/logs", queues: gate)
        let events = EventRecorder()
        configured.events = events.record
        let executor = configured
        let results = try await withThrowingTaskGroup(of: RunResult.self) { group in
            for _ in 0..<6 { group.addTask { try await executor.run(RunRequest(task: job, origin: .manual)) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.allSatisfy { $0.state == .succeeded })
        let inside = try String(contentsOfFile: marks + ".inside", encoding: .utf8).split(separator: "\n").compactMap { Int($0) }
        #expect(inside.count == 6)
        #expect(inside.max()! <= 2, "\(inside)")
        // Runs 3-6 waited at least one whole run (0.3 s) for a place, and said so.
        #expect(events.all.filter { $0 == "waited default" }.count == 4, "\(events.all)")
    }

    @Test("a run waiting past max_queued_time fails as queue_timeout")
    func queueTimeout() async throws {
        let harness = try Harness()
        // The first run holds the queue's only place until the test lets it go.
        let release = harness.directory.path + "/release"
        let slow = try task("  - { name: slow, command: { shell: 'while [ ! -f \(release) ]; do sleep 0.02; done' } }\n")
        let hurried = try task("  - { name: hurried, command: [\"/bin/true\"], timeout: { max_queued_time: 200ms } }\n")
        let gate = QueueGate(limits: ["default": 1], clock: ContinuousClock())
        var configured = RunExecutor(store: harness.store, clock: ContinuousClock(), now: { Date() }, random: { 0.5 },
                                     logDirectory: harness.directory.path + "/logs", queues: gate)
        let events = EventRecorder()
        configured.events = events.record
        let executor = configured
        let first = Task { try await executor.run(RunRequest(task: slow, origin: .manual)) }
        while await gate.load(of: "default").running == 0 { try await Task.sleep(for: .milliseconds(5)) }
        let second = try await executor.run(RunRequest(task: hurried, origin: .manual))
        #expect(second.state == .failed && second.reason == "queue_timeout")
        #expect(try harness.details(second.runID).run.reason == "queue_timeout")
        #expect(events.all == ["start 1 primary", "queue timeout default"])
        #expect(FileManager.default.createFile(atPath: release, contents: nil))
        #expect(try await first.value.state == .succeeded)
        #expect(await gate.load(of: "default") == (0, 0))
    }

    @Test("a run the scheduler held back past its max_queued_time fails as queue_timeout, even with a place free")
    func heldPastMaxQueuedTime() async throws {
        let harness = try Harness()
        let hurried = try task("  - { name: hurried, command: [\"/bin/true\"], timeout: { max_queued_time: 200ms } }\n")
        let executor = RunExecutor(store: harness.store, clock: ContinuousClock(), now: { Date() }, random: { 0.5 },
                                   logDirectory: harness.directory.path + "/logs")
        var held = RunRequest(task: hurried, origin: .manual)
        held.heldFor = .milliseconds(300)
        let result = try await executor.run(held)
        #expect(result.state == .failed && result.reason == "queue_timeout")
        var briefly = RunRequest(task: hurried, origin: .manual)
        briefly.heldFor = .milliseconds(100)
        #expect(try await executor.run(briefly).state == .succeeded)
    }

    @Test("thousands waiting at once are let in in order of arrival, those that gave up left out")
    func manyWaiters() async throws {
        let clock = ManualClock()
        let gate = QueueGate(limits: ["q": 1], clock: clock)
        #expect(await gate.enter("q", maxWait: nil))
        let admitted = Admissions()
        let count = 3000
        var waiters: [Task<Void, Never>] = []
        for index in 0..<count {
            // Every third gives up after a second of waiting.
            let maxWait: Duration? = index % 3 == 1 ? .seconds(1) : nil
            waiters.append(Task {
                if await gate.enter("q", maxWait: maxWait) {
                    await admitted.add(index)
                    await gate.leave("q")
                }
            })
            while await gate.load(of: "q").waiting < index + 1 { await Task.yield() }
        }
        while clock.sleeperCount < count / 3 { try await Task.sleep(for: .milliseconds(5)) }
        clock.advance(by: .seconds(1))
        while await gate.load(of: "q").waiting > count - count / 3 { try await Task.sleep(for: .milliseconds(5)) }
        await gate.leave("q")
        for waiter in waiters { await waiter.value }
        #expect(await admitted.order == (0..<count).filter { $0 % 3 != 1 })
        #expect(await gate.load(of: "q") == (0, 0))
    }
}

private actor Admissions {
    var order: [Int] = []
    func add(_ index: Int) { order.append(index) }
}
