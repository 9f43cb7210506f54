@testable import BelfrySchedule
import Foundation
import Testing

/// The fast engine against a slow, obviously-correct search, on random expressions, zones and
/// instants around DST transitions.
///
/// The reference builds each expression from explicit value sets (so it never uses the parser's
/// bit sets), decomposes wall-clock times with Foundation's Gregorian calendar, and applies
/// SPEC §1.2 literally: it walks UTC minute by minute, and a matching wall-clock time fires at the
/// earliest instant that shows it (or every such instant with `twice`); with `shift`, a gap that
/// holds a matching time fires at the first instant after it.
@Suite("Engine against a brute-force reference")
struct ReferenceSearchTests {
    static let zones = [
        "America/New_York", "America/Los_Angeles", "America/Chicago", "America/Santiago", "America/Havana",
        "America/Sao_Paulo", "America/St_Johns", "America/Asuncion", "Europe/Berlin", "Europe/London",
        "Europe/Dublin", "Europe/Moscow", "Africa/Casablanca", "Africa/Cairo", "Asia/Tehran", "Asia/Jerusalem",
        "Asia/Kathmandu", "Asia/Kolkata", "Australia/Lord_Howe", "Australia/Adelaide", "Australia/Sydney",
        "Pacific/Chatham", "Pacific/Apia", "Pacific/Auckland", "Antarctica/Troll", "UTC",
    ]

    /// A cron expression with the sets it stands for.
    struct RandomExpression {
        var text: String
        var seconds: Set<Int>
        var minutes: Set<Int>
        var hours: Set<Int>
        var daysOfMonth: Set<Int>
        var months: Set<Int>
        var weekdays: Set<Int>
        var domStar: Bool
        var dowStar: Bool

        func dayMatches(day: Int, weekday: Int) -> Bool {
            let byMonthDay = daysOfMonth.contains(day)
            let byWeekday = weekdays.contains(weekday)
            return domStar || dowStar ? byMonthDay && byWeekday : byMonthDay || byWeekday
        }
    }

    typealias RandomField = (text: String, values: Set<Int>, star: Bool)

    /// A field: either `*`, a list, a range, or a stepped range, with its value set.
    static func field(_ range: ClosedRange<Int>, dense: Bool, using rng: inout some RandomNumberGenerator)
        -> RandomField
    {
        switch Int.random(in: 0..<(dense ? 4 : 6), using: &rng) {
        case 0: return ("*", Set(range), true)
        case 1:
            let step = Int.random(in: 1...max(1, (range.upperBound - range.lowerBound) / 3), using: &rng)
            return ("*/\(step)", Set(stride(from: range.lowerBound, through: range.upperBound, by: step)), true)
        case 2:
            let a = Int.random(in: range, using: &rng)
            let b = Int.random(in: a...range.upperBound, using: &rng)
            return ("\(a)-\(b)", Set(a...b), false)
        case 3:
            let a = Int.random(in: range, using: &rng)
            let step = Int.random(in: 1...max(1, (range.upperBound - range.lowerBound) / 2), using: &rng)
            return ("\(a)/\(step)", Set(stride(from: a, through: range.upperBound, by: step)), false)
        default:
            let values = Set((0..<Int.random(in: 1...4, using: &rng)).map { _ in Int.random(in: range, using: &rng) })
            return (values.sorted().map(String.init).joined(separator: ","), values, false)
        }
    }

    static func randomExpression(using rng: inout some RandomNumberGenerator) -> RandomExpression {
        let withSeconds = Int.random(in: 0..<4, using: &rng) == 0
        let second: RandomField = withSeconds ? field(0...59, dense: false, using: &rng) : ("0", [0], false)
        let minute: RandomField = field(0...59, dense: false, using: &rng)
        let hour: RandomField = field(0...23, dense: true, using: &rng)
        let dom: RandomField = Int.random(in: 0..<3, using: &rng) == 0 ? field(1...31, dense: false, using: &rng) : ("*", Set(1...31), true)
        let month: RandomField = Int.random(in: 0..<5, using: &rng) == 0 ? field(1...12, dense: true, using: &rng) : ("*", Set(1...12), true)
        let dow: RandomField = Int.random(in: 0..<3, using: &rng) == 0 ? field(0...6, dense: false, using: &rng) : ("*", Set(0...6), true)
        let fields = (withSeconds ? [second.text] : []) + [minute.text, hour.text, dom.text, month.text, dow.text]
        return RandomExpression(
            text: fields.joined(separator: " "), seconds: second.values, minutes: minute.values, hours: hour.values,
            daysOfMonth: dom.values, months: month.values, weekdays: dow.values, domStar: dom.star, dowStar: dow.star)
    }

    /// The reference: the first slot in (after, after + horizon], or nil if there is none in it.
    static func referenceSlot(
        _ e: RandomExpression, zone: ZoneRules, policy: DSTPolicy, after: Int64, horizon: Int64
    ) -> Int64? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        // Foundation decomposes each day once; the time of day is plain division.
        var days: [Int64: (month: Int, day: Int, weekday: Int)] = [:]
        func matches(local: Int64) -> Bool {
            let dayNumber = local >= 0 ? local / 86400 : (local - 86399) / 86400
            let secondOfDay = Int(local - dayNumber * 86400)
            guard e.seconds.contains(secondOfDay % 60), e.minutes.contains(secondOfDay / 60 % 60),
                e.hours.contains(secondOfDay / 3600)
            else { return false }
            let date: (month: Int, day: Int, weekday: Int)
            if let known = days[dayNumber] {
                date = known
            } else {
                let c = calendar.dateComponents(
                    [.month, .day, .weekday], from: Date(timeIntervalSince1970: TimeInterval(dayNumber * 86400)))
                date = (c.month!, c.day!, c.weekday! - 1)
                days[dayNumber] = date
            }
            return e.months.contains(date.month) && e.dayMatches(day: date.day, weekday: date.weekday)
        }
        func offset(_ u: Int64) -> Int64 { Int64(zone.offset(at: Instant(secondsSinceEpoch: u))) }
        // Every offset the zone uses within two days of the window.
        var offsets = Set<Int64>()
        for u in stride(from: after - 2 * 86400, through: after + horizon + 2 * 86400, by: 900) { offsets.insert(offset(u)) }
        let start = CivilTime.floorDivide(after, 60) * 60
        let seconds = e.seconds.sorted()
        var minute = start
        while minute <= after + horizon {
            for s in seconds {
                let u = minute + Int64(s)
                guard u > after, u <= after + horizon else { continue }
                // Shift: the first instant after a gap that held a matching time.
                let currentOffset = offset(u)
                if policy.skipped == .shift, currentOffset > offset(u - 1) {
                    let gapStart = u - 1 + offset(u - 1) + 1
                    let gapEnd = u + currentOffset
                    var local = gapStart
                    while local < gapEnd {
                        if matches(local: local) { return u }
                        local += 1
                    }
                }
                let local = u + currentOffset
                guard matches(local: local) else { continue }
                let occurrences = offsets.map { local - $0 }.filter { offset($0) == local - $0 }
                if policy.repeated == .twice || u == occurrences.min() { return u }
            }
            minute += 60
        }
        return nil
    }

    @Test("random expressions around DST transitions agree with the reference")
    func randomAgreement() throws {
        var rng = SplitMix64(seed: 20_261_123)
        let policies = [DSTPolicy.default, DSTPolicy(skipped: .shift, repeated: .once),
                        DSTPolicy(skipped: .skip, repeated: .twice), DSTPolicy(skipped: .shift, repeated: .twice)]
        var compared = 0
        var found = 0
        for _ in 0..<1500 {
            let e = Self.randomExpression(using: &rng)
            let zoneName = Self.zones.randomElement(using: &rng)!
            let zone = try TimeZoneDatabase.system.rules(for: zoneName)
            let policy = policies.randomElement(using: &rng)!
            // An instant near a transition between 1995 and 2045 (or any instant, for fixed zones).
            let year = Int64.random(in: 1995...2045, using: &rng)
            let from = CivilTime.days(year: year, month: 1, day: 1) * 86400
            let changes = zone.transitions(from: Instant(secondsSinceEpoch: from), to: Instant(secondsSinceEpoch: from + 366 * 86400))
            let pivot = changes.randomElement(using: &rng)?.instant.secondsSinceEpoch ?? from + Int64.random(in: 0..<(365 * 86400), using: &rng)
            let after = pivot + Int64.random(in: -(36 * 3600)...(12 * 3600), using: &rng)
            let horizon: Int64 = 2 * 86400

            let schedule: CronSchedule
            do {
                schedule = try CronSchedule(parsing: e.text, zone: zone, dst: policy)
            } catch {
                continue  // a random expression that never fires (checked by the parser tests)
            }
            let fast = schedule.nextSlot(after: Instant(secondsSinceEpoch: after))?.secondsSinceEpoch
            let reference = Self.referenceSlot(e, zone: zone, policy: policy, after: after, horizon: horizon)
            compared += 1
            if let reference {
                found += 1
                #expect(fast == reference, "\(e.text) in \(zoneName) after @\(after) \(policy)")
            } else {
                #expect(fast.map { $0 > after + horizon } ?? true, "\(e.text) in \(zoneName) after @\(after) \(policy): engine gave @\(fast ?? 0), reference none within 2 days")
            }
        }
        #expect(compared > 1000)
        #expect(found > 500, "too few expressions fired inside the window to mean anything")
    }
}

/// A small seeded generator, so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
