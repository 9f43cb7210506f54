@testable import BelfrySchedule
import Testing

@Suite("Fixed rates and durations")
struct FixedRateTests {
    @Test("without a start time, slots are anchored at activation, the first one interval later")
    func anchoredAtActivation() throws {
        let rate = try FixedRate(interval: 3600)
        let activation = utc("2026-03-08T05:10:00Z")
        let slots = rate.schedule(activatedAt: activation).slots(after: activation).prefix(3).map(\.rfc3339)
        #expect(slots == ["2026-03-08T06:10:00Z", "2026-03-08T07:10:00Z", "2026-03-08T08:10:00Z"])
        // Asked later (a restart), the grid stays the activation's.
        #expect(rate.nextSlot(after: utc("2026-03-09T00:00:00Z"), activatedAt: activation).rfc3339 == "2026-03-09T00:10:00Z")
        #expect(rate.nextSlot(after: utc("2026-03-09T00:10:00Z"), activatedAt: activation).rfc3339 == "2026-03-09T01:10:00Z")
        // Before activation there is nothing; the first slot is one interval after it.
        #expect(rate.nextSlot(after: utc("2026-01-01T00:00:00Z"), activatedAt: activation).rfc3339 == "2026-03-08T06:10:00Z")
    }

    @Test("fixed rates stay in absolute time across a DST change")
    func absoluteTime() throws {
        let rate = try FixedRate(interval: 3600)
        let activation = utc("2026-11-01T04:30:00Z")
        let ny = zone("America/New_York")
        let locals = rate.schedule(activatedAt: activation).slots(after: activation).prefix(3).map { ny.wallClock(at: $0).rfc3339 }
        #expect(locals == ["2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00", "2026-11-01T02:30:00-05:00"])
    }

    @Test("with a start time: active at it fires at it; activated later fires at the next aligned instant")
    func startTime() throws {
        let start = utc("2026-01-01T00:00:00Z")
        let rate = try FixedRate(interval: 90 * 60, startTime: start)
        let early = utc("2025-12-31T12:00:00Z")
        #expect(rate.nextSlot(after: early, activatedAt: early) == start)
        #expect(rate.nextSlot(after: early, activatedAt: start) == start)
        let late = utc("2026-01-01T02:00:00Z")
        #expect(rate.nextSlot(after: late, activatedAt: late).rfc3339 == "2026-01-01T03:00:00Z")
        #expect(rate.nextSlot(after: utc("2026-01-01T03:00:00Z"), activatedAt: late).rfc3339 == "2026-01-01T04:30:00Z")
        // A watermark older than the activation does not bring back slots before it.
        #expect(rate.nextSlot(after: start, activatedAt: late).rfc3339 == "2026-01-01T03:00:00Z")
    }

    @Test("an interval under one second is rejected")
    func tooShort() {
        #expect(throws: ScheduleError.self) { try FixedRate(interval: 0) }
    }

    @Test(
        "durations", arguments: [
            ("30s", 30_000), ("90m", 5_400_000), ("6h", 21_600_000), ("1h30m", 5_400_000), ("2d", 172_800_000),
            ("250ms", 250), ("1m30s", 90_000), (" 5m ", 300_000), ("0s", 0),
        ] as [(String, Int64)])
    func durations(text: String, milliseconds: Int64) throws {
        #expect(try DurationText.milliseconds(text, field: "timeout") == milliseconds)
    }

    @Test("bad durations name the problem", arguments: [
        ("30x", "not a duration"), ("90", "not a duration"), ("-5m", "negative"), ("", "not a duration"),
        ("30m1h", "largest first"), ("1h1h", "largest first"), ("1.5h", "not a duration"), ("h", "not a duration"),
    ])
    func badDurations(text: String, problem: String) {
        #expect {
            _ = try DurationText.milliseconds(text, field: "timeout")
        } throws: { error in
            (error as? ScheduleError)?.problem.contains(problem) == true
        }
    }

    @Test("a fixed rate's interval is whole seconds, at least one")
    func wholeSeconds() throws {
        #expect(try DurationText.wholeSeconds("1h30m", field: "every") == 5400)
        #expect(throws: ScheduleError.self) { try DurationText.wholeSeconds("500ms", field: "every") }
        #expect(throws: ScheduleError.self) { try DurationText.wholeSeconds("1500ms", field: "every") }
        #expect(throws: ScheduleError.self) { try DurationText.wholeSeconds("0s", field: "every") }
    }

    @Test("predefined triggers are the cron expressions of SPEC §1.4")
    func predefined() throws {
        let after = utc("2026-05-17T13:14:15Z")
        let expected = [
            PredefinedTrigger.minutely: "2026-05-17T13:15:00Z", .hourly: "2026-05-17T14:00:00Z",
            .daily: "2026-05-18T00:00:00Z", .weekly: "2026-05-24T00:00:00Z", .monthly: "2026-06-01T00:00:00Z",
        ]
        for (trigger, slot) in expected {
            let schedule = try CronSchedule(parsing: trigger.expression, zone: zone("UTC"))
            #expect(schedule.nextSlot(after: after)?.rfc3339 == slot, "\(trigger)")
        }
    }
}
