@testable import BelfrySchedule
import Testing

/// SPEC §1.2 on real zones. Expected instants are worked out by hand from the zones' published rules.
@Suite("DST and time zones")
struct DSTTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var expression: String
        var zone: String
        var after: String
        var dst: DSTPolicy = .default
        var expected: [String]
        var testDescription: String { "\(expression) in \(zone) after \(after) (\(dst.skipped), \(dst.repeated))" }
    }

    static let shift = DSTPolicy(skipped: .shift, repeated: .once)
    static let twice = DSTPolicy(skipped: .skip, repeated: .twice)

    static let newYork: [Case] = [
        // Spring forward 2026-03-08 02:00 EST -> 03:00 EDT: no 02:30 that day.
        Case(expression: "30 2 * * *", zone: "America/New_York", after: "2026-03-07T00:00:00Z",
             expected: ["2026-03-07T07:30:00Z", "2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z"]),
        Case(expression: "30 2 * * *", zone: "America/New_York", after: "2026-03-07T00:00:00Z", dst: shift,
             expected: ["2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]),
        // Several skipped times collapse into one fire at the end of the gap, with 03:00 itself.
        Case(expression: "*/20 * * * *", zone: "America/New_York", after: "2026-03-08T06:30:00Z", dst: shift,
             expected: ["2026-03-08T06:40:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:20:00Z"]),
        Case(expression: "*/20 * * * *", zone: "America/New_York", after: "2026-03-08T06:30:00Z",
             expected: ["2026-03-08T06:40:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:20:00Z"]),
        Case(expression: "30 1 * * *", zone: "America/New_York", after: "2026-03-07T12:00:00Z",
             expected: ["2026-03-08T06:30:00Z", "2026-03-09T05:30:00Z"]),
        // Fall back 2026-11-01 02:00 EDT -> 01:00 EST: 01:xx happens twice.
        Case(expression: "30 1 * * *", zone: "America/New_York", after: "2026-10-31T12:00:00Z",
             expected: ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]),
        Case(expression: "30 1 * * *", zone: "America/New_York", after: "2026-10-31T12:00:00Z", dst: twice,
             expected: ["2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z", "2026-11-02T06:30:00Z"]),
        Case(expression: "*/15 * * * *", zone: "America/New_York", after: "2026-11-01T04:50:00Z",
             expected: ["2026-11-01T05:00:00Z", "2026-11-01T05:15:00Z", "2026-11-01T05:30:00Z",
                        "2026-11-01T05:45:00Z", "2026-11-01T07:00:00Z", "2026-11-01T07:15:00Z"]),
        Case(expression: "*/30 * * * *", zone: "America/New_York", after: "2026-11-01T04:50:00Z", dst: twice,
             expected: ["2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z", "2026-11-01T06:00:00Z",
                        "2026-11-01T06:30:00Z", "2026-11-01T07:00:00Z"]),
        // Asked from inside the repeated hour (01:10 EST, the second pass): nothing fires twice.
        Case(expression: "*/15 * * * *", zone: "America/New_York", after: "2026-11-01T06:10:00Z",
             expected: ["2026-11-01T07:00:00Z"]),
        Case(expression: "*/15 * * * *", zone: "America/New_York", after: "2026-11-01T06:10:00Z", dst: twice,
             expected: ["2026-11-01T06:15:00Z", "2026-11-01T06:30:00Z"]),
        Case(expression: "30 2 * * *", zone: "America/New_York", after: "2026-11-01T00:00:00Z",
             expected: ["2026-11-01T07:30:00Z"]),
    ]

    static let elsewhere: [Case] = [
        // Lord Howe: 30-minute DST. Ends 2026-04-05 02:00 +11 -> 01:30 +10:30; starts 2026-10-04 02:00 -> 02:30.
        Case(expression: "45 1 * * *", zone: "Australia/Lord_Howe", after: "2026-04-04T00:00:00Z",
             expected: ["2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z"]),
        Case(expression: "45 1 * * *", zone: "Australia/Lord_Howe", after: "2026-04-04T00:00:00Z", dst: twice,
             expected: ["2026-04-04T14:45:00Z", "2026-04-04T15:15:00Z", "2026-04-05T15:15:00Z"]),
        Case(expression: "15 2 * * *", zone: "Australia/Lord_Howe", after: "2026-10-02T00:00:00Z",
             expected: ["2026-10-02T15:45:00Z", "2026-10-04T15:15:00Z"]),
        Case(expression: "15 2 * * *", zone: "Australia/Lord_Howe", after: "2026-10-02T00:00:00Z", dst: shift,
             expected: ["2026-10-02T15:45:00Z", "2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z"]),
        Case(expression: "0 0 L * *", zone: "Australia/Lord_Howe", after: "2026-01-01T00:00:00Z",
             expected: ["2026-01-30T13:00:00Z", "2026-02-27T13:00:00Z", "2026-03-30T13:00:00Z", "2026-04-29T13:30:00Z"]),
        // Kathmandu +05:45 and Chatham +12:45 / +13:45.
        Case(expression: "0 9 * * *", zone: "Asia/Kathmandu", after: "2026-06-01T00:00:00Z",
             expected: ["2026-06-01T03:15:00Z", "2026-06-02T03:15:00Z"]),
        Case(expression: "0 3 * * *", zone: "Pacific/Chatham", after: "2026-09-25T00:00:00Z",
             expected: ["2026-09-25T14:15:00Z", "2026-09-27T13:15:00Z"]),
        Case(expression: "0 3 * * *", zone: "Pacific/Chatham", after: "2026-04-03T00:00:00Z",
             expected: ["2026-04-03T13:15:00Z", "2026-04-04T13:15:00Z", "2026-04-05T14:15:00Z"]),
        // Dublin: winter time is the negative DST; offsets as London's. 2026-03-29 01:00 -> 02:00, 2026-10-25 02:00 -> 01:00.
        Case(expression: "30 1 * * *", zone: "Europe/Dublin", after: "2026-03-28T00:00:00Z",
             expected: ["2026-03-28T01:30:00Z", "2026-03-30T00:30:00Z"]),
        Case(expression: "30 1 * * *", zone: "Europe/Dublin", after: "2026-10-24T12:00:00Z",
             expected: ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]),
        // Midnight changes: Santiago has no 2026-09-06 00:00; Havana no 2026-03-08 00:00.
        Case(expression: "0 0 * * *", zone: "America/Santiago", after: "2026-09-05T00:00:00Z",
             expected: ["2026-09-05T04:00:00Z", "2026-09-07T03:00:00Z"]),
        Case(expression: "0 0 * * *", zone: "America/Santiago", after: "2026-09-05T00:00:00Z", dst: shift,
             expected: ["2026-09-05T04:00:00Z", "2026-09-06T04:00:00Z", "2026-09-07T03:00:00Z"]),
        // Santiago 2026-04-05 00:00 -03 -> 2026-04-04 23:00 -04: 23:30 on the 4th happens twice.
        Case(expression: "30 23 * * *", zone: "America/Santiago", after: "2026-04-03T12:00:00Z",
             expected: ["2026-04-04T02:30:00Z", "2026-04-05T02:30:00Z", "2026-04-06T03:30:00Z"]),
        Case(expression: "0 0 * * *", zone: "America/Havana", after: "2026-03-06T12:00:00Z",
             expected: ["2026-03-07T05:00:00Z", "2026-03-09T04:00:00Z"]),
        Case(expression: "30 0 * * *", zone: "America/Havana", after: "2026-10-31T12:00:00Z", dst: twice,
             expected: ["2026-11-01T04:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T05:30:00Z"]),
        // Apia skipped 2011-12-30 entirely: Dec 29 23:59:59 -10 was followed by Dec 31 00:00 +14.
        Case(expression: "0 12 * * *", zone: "Pacific/Apia", after: "2011-12-28T00:00:00Z",
             expected: ["2011-12-28T22:00:00Z", "2011-12-29T22:00:00Z", "2011-12-30T22:00:00Z", "2011-12-31T22:00:00Z"]),
        Case(expression: "0 0 30 12 *", zone: "Pacific/Apia", after: "2011-06-01T00:00:00Z",
             expected: ["2012-12-29T10:00:00Z"]),
        // Troll: two-hour DST. 2026-03-29 01:00 UTC: 01:00 -> 03:00; 2026-10-25 01:00 UTC: 03:00 -> 01:00.
        Case(expression: "30 1,2 * * *", zone: "Antarctica/Troll", after: "2026-03-28T00:00:00Z",
             expected: ["2026-03-28T01:30:00Z", "2026-03-28T02:30:00Z", "2026-03-29T23:30:00Z", "2026-03-30T00:30:00Z"]),
        Case(expression: "30 1,2 * * *", zone: "Antarctica/Troll", after: "2026-03-28T00:00:00Z", dst: shift,
             expected: ["2026-03-28T01:30:00Z", "2026-03-28T02:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T23:30:00Z"]),
        Case(expression: "30 1,2 * * *", zone: "Antarctica/Troll", after: "2026-10-24T12:00:00Z",
             expected: ["2026-10-24T23:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]),
        Case(expression: "30 1,2 * * *", zone: "Antarctica/Troll", after: "2026-10-24T12:00:00Z", dst: twice,
             expected: ["2026-10-24T23:30:00Z", "2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z", "2026-10-25T02:30:00Z"]),
    ]

    static let calendar: [Case] = [
        Case(expression: "0 0 29 2 *", zone: "UTC", after: "2025-01-01T00:00:00Z",
             expected: ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]),
        Case(expression: "0 0 29 2 *", zone: "UTC", after: "2096-03-01T00:00:00Z",
             expected: ["2104-02-29T00:00:00Z"]),
        Case(expression: "0 0 L 2 *", zone: "UTC", after: "2024-01-01T00:00:00Z",
             expected: ["2024-02-29T00:00:00Z", "2025-02-28T00:00:00Z"]),
        Case(expression: "0 0 L * *", zone: "UTC", after: "2026-01-31T00:00:00Z",
             expected: ["2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z", "2026-04-30T00:00:00Z"]),
        Case(expression: "0 0 * * 5L", zone: "UTC", after: "2026-02-01T00:00:00Z",
             expected: ["2026-02-27T00:00:00Z", "2026-03-27T00:00:00Z", "2026-04-24T00:00:00Z"]),
        Case(expression: "0 0 * * 0L", zone: "UTC", after: "2026-05-01T00:00:00Z",
             expected: ["2026-05-31T00:00:00Z", "2026-06-28T00:00:00Z"]),
        Case(expression: "0 0 * * MON#1", zone: "UTC", after: "2026-08-31T00:00:00Z",
             expected: ["2026-09-07T00:00:00Z", "2026-10-05T00:00:00Z"]),
        Case(expression: "0 0 * * FRI#5", zone: "UTC", after: "2026-01-01T00:00:00Z",
             expected: ["2026-01-30T00:00:00Z", "2026-05-29T00:00:00Z"]),
        Case(expression: "0 0 31 * *", zone: "UTC", after: "2026-04-01T00:00:00Z",
             expected: ["2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z"]),
        // Vixie rule: both day fields restricted -> either; one starting with * -> both.
        Case(expression: "0 0 13 * 5", zone: "UTC", after: "2026-02-01T00:00:00Z",
             expected: ["2026-02-06T00:00:00Z", "2026-02-13T00:00:00Z", "2026-02-20T00:00:00Z", "2026-02-27T00:00:00Z", "2026-03-06T00:00:00Z", "2026-03-13T00:00:00Z"]),
        Case(expression: "0 0 */2 * 1", zone: "UTC", after: "2026-02-01T00:00:00Z",
             expected: ["2026-02-09T00:00:00Z", "2026-02-23T00:00:00Z", "2026-03-09T00:00:00Z"]),
        Case(expression: "0 0 ? * 1", zone: "UTC", after: "2026-02-01T00:00:00Z",
             expected: ["2026-02-02T00:00:00Z", "2026-02-09T00:00:00Z"]),
        Case(expression: "0 0 1 * ?", zone: "UTC", after: "2026-02-01T00:00:00Z",
             expected: ["2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"]),
        Case(expression: "*/20 * * * * *", zone: "UTC", after: "2026-02-01T00:00:00Z",
             expected: ["2026-02-01T00:00:20Z", "2026-02-01T00:00:40Z", "2026-02-01T00:01:00Z"]),
        Case(expression: "59 59 23 31 12 *", zone: "UTC", after: "2026-02-01T00:00:00Z",
             expected: ["2026-12-31T23:59:59Z", "2027-12-31T23:59:59Z"]),
    ]

    @Test("New York, SPEC §1.2", arguments: newYork)
    func newYorkCases(_ c: Case) throws {
        #expect(try slots(c.expression, c.zone, after: c.after, count: c.expected.count, dst: c.dst) == c.expected)
    }

    @Test("other zones: 30- and 45-minute offsets, negative DST, midnight changes, a skipped day", arguments: elsewhere)
    func otherZoneCases(_ c: Case) throws {
        #expect(try slots(c.expression, c.zone, after: c.after, count: c.expected.count, dst: c.dst) == c.expected)
    }

    @Test("calendar: leap years, L, nL, n#k, the day rule, seconds", arguments: calendar)
    func calendarCases(_ c: Case) throws {
        #expect(try slots(c.expression, c.zone, after: c.after, count: c.expected.count, dst: c.dst) == c.expected)
    }

    @Test("wall-clock markers around DST changes")
    func markers() {
        let ny = zone("America/New_York")
        #expect(ny.wallClock(at: utc("2026-03-08T07:00:00Z")).marker == .afterGap)
        #expect(ny.wallClock(at: utc("2026-03-08T07:00:00Z")).rfc3339 == "2026-03-08T03:00:00-04:00")
        #expect(ny.wallClock(at: utc("2026-03-08T06:59:59Z")).marker == nil)
        #expect(ny.wallClock(at: utc("2026-11-01T05:00:00Z")).marker == .repeatedFirst)
        #expect(ny.wallClock(at: utc("2026-11-01T04:59:59Z")).marker == nil)
        #expect(ny.wallClock(at: utc("2026-11-01T06:59:59Z")).marker == .repeatedSecond)
        #expect(ny.wallClock(at: utc("2026-11-01T07:00:00Z")).marker == nil)
        #expect(ny.wallClock(at: utc("2026-11-01T06:00:00Z")).abbreviation == "EST")
        #expect(ny.wallClock(at: utc("2026-11-01T05:59:00Z")).abbreviation == "EDT")
    }

    @Test("local date-times resolve to the first occurrence, or the end of a gap")
    func localTimes() throws {
        let ny = zone("America/New_York")
        func local(_ text: String) throws -> String { try InstantText.parse(text, zone: ny, field: "t").rfc3339 }
        #expect(try local("2026-11-01T01:30") == "2026-11-01T05:30:00Z")
        #expect(try local("2026-03-08T02:30") == "2026-03-08T07:00:00Z")
        #expect(try local("2026-07-04 12:00:00") == "2026-07-04T16:00:00Z")
        #expect(try local("2026-07-04") == "2026-07-04T04:00:00Z")
        #expect(try local("2026-07-04T12:00:00+02:00") == "2026-07-04T10:00:00Z")
        #expect(try local("@1700000000") == "2023-11-14T22:13:20Z")
        for bad in ["2026-02-30", "tomorrow", "2026-07-04T25:00", "2026-07-04T12:00:00+2", ""] {
            #expect(throws: ScheduleError.self) { try InstantText.parse(bad, zone: ny, field: "t") }
        }
    }

    @Test("instants past the file's table come from its POSIX rule")
    func farFuture() throws {
        let ny = zone("America/New_York")
        #expect(ny.offset(at: utc("2150-01-15T12:00:00Z")) == -5 * 3600)
        #expect(ny.offset(at: utc("2150-07-15T12:00:00Z")) == -4 * 3600)
        let changes = ny.transitions(from: utc("2150-01-01T00:00:00Z"), to: utc("2151-01-01T00:00:00Z"))
        #expect(changes.count == 2)
        for change in changes {
            let wall = CivilTime.components(change.instant.secondsSinceEpoch + Int64(change.before))
            #expect(CivilTime.weekday(days: CivilTime.days(year: wall.year, month: wall.month, day: wall.day)) == 0)
            #expect(wall.hour == 2 && wall.minute == 0)
        }
        // 2150-03-08 is the second Sunday of March 2150.
        #expect(try slots("30 2 * * *", "America/New_York", after: "2150-03-07T00:00:00Z", count: 2)
            == ["2150-03-07T07:30:00Z", "2150-03-09T06:30:00Z"])
    }
}
