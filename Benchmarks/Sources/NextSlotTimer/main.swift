import BelfrySchedule

/// Next-slot timing with exactly the method of `robfig/main.go` (median of 15 batches of 100,000
/// calls, walking slot to slot through 2026-2035), so compare-robfig.sh can put the two side by
/// side from one run. The ordo-one `NextSlot` benchmark is the detailed measurement.
let cases = [
    ("*/15 * * * *", "UTC"),
    ("30 2 * * *", "America/New_York"),
    ("0 9 * * 1-5", "Europe/Berlin"),
    ("*/5 9-17 * * 1-5", "America/Los_Angeles"),
    ("0 0 L * *", "Australia/Lord_Howe"),
]
let start = Instant(secondsSinceEpoch: 1_767_225_600)  // 2026-01-01T00:00:00Z
let end = Instant(secondsSinceEpoch: 2_082_758_400)  // 2036-01-01T00:00:00Z
let batches = 15
let batchSize = 100_000

for (expression, zoneName) in cases {
    let schedule = try CronSchedule(parsing: expression, zone: TimeZoneDatabase.system.rules(for: zoneName))
    var samples: [Double] = []
    var instant = start
    let clock = ContinuousClock()
    for _ in 0..<batches {
        let began = clock.now
        for _ in 0..<batchSize {
            let next = schedule.nextSlot(after: instant)!
            instant = next < end ? next : start
        }
        let elapsed = clock.now - began
        let nanoseconds = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
        samples.append(nanoseconds / Double(batchSize))
    }
    samples.sort()
    print("\(expression)\t\(zoneName)\t\((samples[batches / 2] * 10).rounded() / 10)\t\(instant.secondsSinceEpoch)")
}
