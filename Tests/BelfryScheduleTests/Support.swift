@testable import BelfrySchedule
import Testing

/// Parses an RFC 3339 UTC instant in a test table.
func utc(_ text: String) -> Instant {
    try! InstantText.parse(text, zone: zone("UTC"), field: "test")
}

func zone(_ name: String) -> ZoneRules {
    try! TimeZoneDatabase.system.rules(for: name)
}

/// The next `count` slots of `expression` in `zoneName` after `after`, as RFC 3339 UTC strings.
func slots(
    _ expression: String, _ zoneName: String, after: String, count: Int, dst: DSTPolicy = .default
) throws -> [String] {
    let schedule = try CronSchedule(parsing: expression, zone: zone(zoneName), dst: dst)
    let start = try InstantText.parse(after, zone: zone(zoneName), field: "test")
    return schedule.slots(after: start).prefix(count).map(\.rfc3339)
}
