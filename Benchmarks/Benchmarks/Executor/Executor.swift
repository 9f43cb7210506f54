import Benchmark
import BelfryConfig
import BelfryExecutor
import BelfryStore
import Foundation

/// Executor overhead (issue 5): a whole run of `/bin/true` — run row, attempt launch in its own
/// session, output pipe and log, attempt and run records committed — one at a time, and 160 runs
/// with 16 at once (attempts per second = 160 / the time of an iteration).
let benchmarks: @Sendable () -> Void = {
    func setUp() throws -> (RunExecutor<ContinuousClock>, TaskDefinition, String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("belfry-bench-\(UUID())").path
        let store = try BelfryDatabase(path: directory + "/belfry.sqlite")
        let task = try DefinitionLoader.load(files: [("bench.yaml", Array("tasks:\n  - { name: noop, command: [\"/bin/true\"] }\n".utf8))]).tasks[0]
        let executor = RunExecutor(
            store: store, clock: ContinuousClock(), now: { Date() }, random: { 0.5 }, logDirectory: directory + "/logs",
            queues: QueueGate(limits: ["default": 16], clock: ContinuousClock()))
        return (executor, task, directory)
    }

    Benchmark("run /bin/true, launch to records committed", configuration: .init(metrics: [.wallClock], maxDuration: .seconds(10), maxIterations: 2000)) { benchmark in
        let (executor, task, directory) = try setUp()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try await executor.run(RunRequest(task: task, origin: .manual)))
        }
    }

    Benchmark("160 runs of /bin/true, 16 at once", configuration: .init(metrics: [.wallClock], maxDuration: .seconds(20), maxIterations: 20)) { benchmark in
        let (executor, task, directory) = try setUp()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        benchmark.startMeasurement()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<160 { group.addTask { _ = try await executor.run(RunRequest(task: task, origin: .manual)) } }
            try await group.waitForAll()
        }
    }
}
