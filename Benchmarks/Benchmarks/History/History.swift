import Benchmark
import BelfrySchedule
import BelfryStore
import Foundation

/// Run history written in batches, as the daemon writes it (SPEC §8: at least 20,000 run
/// records per second). Each iteration writes one batch of 10,000 records in one transaction;
/// records per second = 10,000 / the wall-clock time of an iteration.
let benchmarks: @Sendable () -> Void = {
    Benchmark(
        "insertRuns 10,000 records per transaction",
        configuration: .init(metrics: [.wallClock, .throughput], maxDuration: .seconds(10), maxIterations: 20)
    ) { benchmark in
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("belfry-bench-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try BelfryDatabase(path: directory + "/belfry.sqlite")
        let now = Date()
        let batch = (0..<10_000).map { i in
            RunRecord(
                task: "env-\(i % 100).task-\(i % 1000)", trigger: "t\(i % 10)", slot: Instant(secondsSinceEpoch: 1_767_225_600 + Int64(i)),
                origin: .scheduled, state: .succeeded, attempts: 1, exitCode: 0, queuedAt: now, startedAt: now, finishedAt: now)
        }
        benchmark.startMeasurement()
        try store.insertRuns(batch)
        benchmark.stopMeasurement()
    }
}
