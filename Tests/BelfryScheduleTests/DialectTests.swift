@testable import BelfrySchedule
import Foundation
import Testing

/// Quartz's month-dependent day forms, Vixie's large steps and literal day rule, and Jenkins' H.
@Suite("Cron dialects")
struct DialectTests {
    static func days(_ expression: String, _ year: Int64, _ month: Int, key: String? = nil) throws -> [Int] {
        let mask = try CronExpression(parsing: expression, hashKey: key).days(year: year, month: month)
        return (1...31).filter { mask & (1 << UInt64($0)) != 0 }
    }

    @Test("nW, LW, L-n and n-L at the edges: a Saturday 1st, a Sunday 31st, February in leap and common years")
    func monthDayTable() throws {
        // 2022-01-01 was a Saturday: 1W is Monday the 3rd (never the previous month's Friday).
        #expect(try Self.days("0 0 1W * *", 2022, 1) == [3])
        // 2021-10-31 was a Sunday: 31W is Friday the 29th (never the next month's Monday).
        #expect(try Self.days("0 0 31W * *", 2021, 10) == [29])
        // A Saturday 15th (2022-01-15) moves to Friday the 14th, a Sunday 16th (2022-01-16) to Monday the 17th.
        #expect(try Self.days("0 0 15W * *", 2022, 1) == [14])
        #expect(try Self.days("0 0 16W * *", 2022, 1) == [17])
        #expect(try Self.days("0 0 12W * *", 2022, 1) == [12])  // a Wednesday stays
        // 31W in a 30-day month: no day that month.
        #expect(try Self.days("0 0 31W * *", 2022, 4) == [])
        // LW: the last weekday. 2022-04-30 was a Saturday, 2022-07-31 a Sunday, 2022-08-31 a Wednesday.
        #expect(try Self.days("0 0 LW * *", 2022, 4) == [29])
        #expect(try Self.days("0 0 LW * *", 2022, 7) == [29])
        #expect(try Self.days("0 0 LW * *", 2022, 8) == [31])
        // L-3 in February: the 25th in a common year, the 26th in a leap year.
        #expect(try Self.days("0 0 L-3 * *", 2023, 2) == [25])
        #expect(try Self.days("0 0 L-3 * *", 2024, 2) == [26])
        #expect(try Self.days("0 0 L * *", 2024, 2) == [29])
        #expect(try Self.days("0 0 L-30 * *", 2024, 1) == [1])
        #expect(try Self.days("0 0 L-30 * *", 2024, 2) == [])
        // n-L, and lists mixing forms.
        #expect(try Self.days("0 0 25-L * *", 2023, 2) == [25, 26, 27, 28])
        #expect(try Self.days("0 0 1,15W,L * *", 2022, 1) == [1, 14, 31])
    }

    /// The reference for a month-dependent item: Foundation's calendar, day by day.
    static func reference(_ item: String, year: Int, month: Int) -> Set<Int> {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let first = calendar.date(from: DateComponents(year: year, month: month, day: 1))!
        let length = calendar.range(of: .day, in: .month, for: first)!.count
        func weekday(_ day: Int) -> Int { calendar.component(.weekday, from: calendar.date(from: DateComponents(year: year, month: month, day: day))!) }
        let isWeekday = { (day: Int) in (2...6).contains(weekday(day)) }  // Monday-Friday
        if item == "L" { return [length] }
        if item == "LW" { return [(1...length).reversed().first(where: isWeekday)!] }
        if item.hasPrefix("L-") { let d = length - Int(item.dropFirst(2))!; return d >= 1 ? [d] : [] }
        if item.hasSuffix("-L") { let a = Int(item.dropLast(2))!; return a <= length ? Set(a...length) : [] }
        let n = Int(item.dropLast())!  // nW
        guard n <= length else { return [] }
        if isWeekday(n) { return [n] }
        // The nearest weekday within the month: one day either side first, then two.
        for distance in 1...2 {
            for day in [n - distance, n + distance] where (1...length).contains(day) && isWeekday(day) {
                if distance == 2 || day == n - 1 || day == n + 1 { return [day] }
            }
        }
        return []
    }

    @Test("random month-dependent items agree with a calendar walk, 1990-2110, every weekday position of the 1st and the last")
    func againstCalendar() throws {
        var rng = SplitMix64(seed: 2026_12_01)
        var positions = Set<Int>()
        for _ in 0..<3000 {
            let item: String
            switch Int.random(in: 0..<5, using: &rng) {
            case 0: item = "L"
            case 1: item = "LW"
            case 2: item = "L-\(Int.random(in: 0...30, using: &rng))"
            case 3: item = "\(Int.random(in: 1...31, using: &rng))-L"
            default: item = "\(Int.random(in: 1...31, using: &rng))W"
            }
            let year = Int.random(in: 1990...2110, using: &rng)
            let month = Int.random(in: 1...12, using: &rng)
            positions.insert(CivilTime.weekday(days: CivilTime.days(year: Int64(year), month: month, day: 1)) * 100
                             + CivilTime.daysInMonth(year: Int64(year), month: month))
            let engine = try Set(Self.days("0 0 \(item) * *", Int64(year), month))
            #expect(engine == Self.reference(item, year: year, month: month), "\(item) in \(year)-\(month)")
        }
        #expect(positions.count == 7 * 4, "every first weekday with every month length")
    }

    @Test("Vixie: steps larger than the span mean the first value, with a warning; \"starts with *\" is literal")
    func vixie() throws {
        let weekly = try CronExpression(parsing: "0 0 * * */7")
        #expect(weekly.warnings.count == 1 && weekly.warnings[0].field == .dayOfWeek && weekly.warnings[0].column == 9)
        #expect(try Self.days("0 0 * * */7", 2026, 12) == [6, 13, 20, 27])  // Sundays
        #expect(try CronExpression(parsing: "0 0 1 */15 *").months == 1 << 1)
        // The first Monday of the month: day-of-month starts with `*`, so both fields must match.
        #expect(try Self.days("0 0 */100,1-7 * MON", 2026, 12) == [7])
        #expect(try Self.days("0 0 */100,1-7 * MON", 2027, 2) == [1])
        #expect(try Self.days("0 0 1-7 * MON", 2026, 12) == [1, 2, 3, 4, 5, 6, 7, 14, 21, 28])  // either matches
        #expect(try CronExpression(parsing: "*/5 * * * *").warnings.isEmpty)
    }

    @Test("H: fixed values for fixed keys (the function never changes), within its range, steps from the hashed offset")
    func hash() throws {
        // Pinned: a change here moves every hashed job of every user.
        #expect(CronHash.value(key: "ops.backup nightly", field: 1) % 60 == 4)
        #expect(try CronExpression(parsing: "H * * * *", hashKey: "ops.backup nightly").resolved == "4 * * * *")
        let resolved = try CronExpression(parsing: "H H(2-5) H/10 * H", hashKey: "ops.backup nightly").resolved
        #expect(resolved == "4 \(2 + CronHash.value(key: "ops.backup nightly", field: 2) % 4) "
            + "\(1 + CronHash.value(key: "ops.backup nightly", field: 3) % 10)-28/10 * \(CronHash.value(key: "ops.backup nightly", field: 5) % 7)")
        #expect(try CronExpression(parsing: "0 0 * * *", hashKey: "x").resolved == "0 0 * * *")
        #expect(throws: CronError.self) { try CronExpression(parsing: "H * * * *") }
        #expect(throws: CronError.self) { try CronExpression(parsing: "H(5-1) * * * *", hashKey: "k") }
        #expect(throws: CronError.self) { try CronExpression(parsing: "H(5 * * * *", hashKey: "k") }
        #expect(throws: CronError.self) { try CronExpression(parsing: "Hx * * * *", hashKey: "k") }

        var minutes = Set<Int>()
        for i in 0..<200 {
            let key = "env.task\(i) hourly"
            let e = try CronExpression(parsing: "H H(9-17) H * *", hashKey: key)
            #expect(try CronExpression(parsing: "H H(9-17) H * *", hashKey: key) == e, "the same key gives the same expression")
            let minute = e.minutes.trailingZeroBitCount
            minutes.insert(minute)
            #expect(e.minutes.nonzeroBitCount == 1 && minute < 60)
            #expect((9...17).contains(e.hours.trailingZeroBitCount) && e.hours.nonzeroBitCount == 1)
            #expect((1...28).contains(e.daysOfMonth.trailingZeroBitCount), "H in day-of-month stays in 1-28")
            let stepped = try CronExpression(parsing: "H/15 * * * *", hashKey: key)
            let offset = stepped.minutes.trailingZeroBitCount
            #expect(offset < 15 && stepped.minutes == (0..<4).reduce(UInt64(0)) { $0 | 1 << UInt64(offset + 15 * $1) })
        }
        #expect(minutes.count >= 50, "200 keys spread over \(minutes.count) minutes")
    }

    @Test("DST notes: a gap or a repeat that holds a matching time, with its next date; nothing for times that never meet one")
    func dstEncounters() throws {
        let newYork = try TimeZoneDatabase.system.rules(for: "America/New_York")
        let after = Instant(secondsSinceEpoch: 1_796_083_200)  // 2026-12-01
        let nightly = try CronSchedule(parsing: "30 2 * * *", zone: newYork).dstEncounters(after: after)
        #expect(nightly.gap?.date == "2027-03-14" && nightly.gap?.first == "02:30" && nightly.gap?.resumesAt == "03:00")
        #expect(nightly.repeated == nil)
        let early = try CronSchedule(parsing: "30 1 * * *", zone: newYork).dstEncounters(after: after)
        #expect(early.gap == nil && early.repeated?.date == "2027-11-07")
        #expect(try CronSchedule(parsing: "0 12 * * *", zone: newYork).dstEncounters(after: after) == (nil, nil))
        #expect(try CronSchedule(parsing: "30 2 * * *", zone: TimeZoneDatabase.system.rules(for: "UTC")).dstEncounters(after: after) == (nil, nil))
        // A W day meets the change only when it falls on the change's Sunday... which W never does.
        #expect(try CronSchedule(parsing: "30 2 14W * *", zone: newYork).dstEncounters(after: after).gap == nil)
        // The 14th itself does, in 2027 (a Sunday).
        #expect(try CronSchedule(parsing: "30 2 14 * *", zone: newYork).dstEncounters(after: after).gap?.date == "2027-03-14")
    }
}
