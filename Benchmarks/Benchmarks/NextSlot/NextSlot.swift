import Benchmark
import BelfrySchedule

/// Next-slot computation (SPEC §8, issue 3): the cases the README's table reports, the same ones
/// `robfig/` measures for robfig/cron v3.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 1_000_000
    )

    // The same cases in 2026-2035 and, where the zone has DST, past 2100: there the zone's table
    // ends and its POSIX rule gives the changes (no slow years: within 2× of inside the table).
    let eras = [("", ScheduleCases.start, ScheduleCases.end), (" past 2100", ScheduleCases.pastStart, ScheduleCases.pastEnd)]
    for (expression, zoneName) in ScheduleCases.all {
        for (era, start, end) in eras where era.isEmpty || zoneName != "UTC" {
            Benchmark("nextSlot \(expression) \(zoneName)\(era)") { benchmark in
                let schedule = try CronSchedule(
                    parsing: expression, zone: TimeZoneDatabase.system.rules(for: zoneName), hashKey: "ops.backup nightly")
                // Walk forward slot by slot, as a daemon does; wrap around to stay in the era.
                var instant = start
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations {
                    let next = schedule.nextSlot(after: instant)!
                    instant = next < end ? next : start
                }
                blackHole(instant)
            }
        }
    }
}

enum ScheduleCases {
    static let all = [
        ("*/15 * * * *", "UTC"),
        ("30 2 * * *", "America/New_York"),
        ("0 9 * * 1-5", "Europe/Berlin"),
        ("*/5 9-17 * * 1-5", "America/Los_Angeles"),
        ("0 0 L * *", "Australia/Lord_Howe"),
        ("0 9 15W * *", "Europe/London"),
        ("0 17 LW * *", "America/New_York"),
        ("H H(0-5) * * *", "Europe/Berlin"),
        ("H/15 * * * *", "UTC"),
    ]
    static let start = Instant(secondsSinceEpoch: 1_767_225_600)  // 2026-01-01T00:00:00Z
    static let end = Instant(secondsSinceEpoch: 2_082_758_400)  // 2036-01-01T00:00:00Z
    static let pastStart = Instant(secondsSinceEpoch: 4_133_980_800)  // 2101-01-01T00:00:00Z
    static let pastEnd = Instant(secondsSinceEpoch: 4_449_513_600)  // 2111-01-01T00:00:00Z
}
