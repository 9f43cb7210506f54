@testable import BelfrySchedule
import Foundation
import BelfryTesting
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
        /// Day items that depend on the month (`L`, `nW`, `nL`, `n#k`...), given (day, weekday,
        /// the month's length), each written here from the manual's table.
        var monthDayRules: [(Int, Int, Int) -> Bool] = []
        var weekdayRules: [(Int, Int, Int) -> Bool] = []

        func dayMatches(day: Int, weekday: Int, monthLength: Int) -> Bool {
            let byMonthDay = daysOfMonth.contains(day) || monthDayRules.contains { $0(day, weekday, monthLength) }
            let byWeekday = weekdays.contains(weekday) || weekdayRules.contains { $0(day, weekday, monthLength) }
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
        var days: [Int64: (month: Int, day: Int, weekday: Int, length: Int)] = [:]
        func matches(local: Int64, ignoringSecond: Bool = false) -> Bool {
            let dayNumber = local >= 0 ? local / 86400 : (local - 86399) / 86400
            let secondOfDay = Int(local - dayNumber * 86400)
            guard ignoringSecond || e.seconds.contains(secondOfDay % 60), e.minutes.contains(secondOfDay / 60 % 60),
                e.hours.contains(secondOfDay / 3600)
            else { return false }
            let date: (month: Int, day: Int, weekday: Int, length: Int)
            if let known = days[dayNumber] {
                date = known
            } else {
                let instant = Date(timeIntervalSince1970: TimeInterval(dayNumber * 86400))
                let c = calendar.dateComponents([.month, .day, .weekday], from: instant)
                date = (c.month!, c.day!, c.weekday! - 1, calendar.range(of: .day, in: .month, for: instant)!.count)
                days[dayNumber] = date
            }
            return e.months.contains(date.month) && e.dayMatches(day: date.day, weekday: date.weekday, monthLength: date.length)
        }
        func offset(_ u: Int64) -> Int64 { Int64(zone.offset(at: Instant(secondsSinceEpoch: u))) }
        // Every offset the zone uses within two days of the window.
        var offsets = Set<Int64>()
        for u in stride(from: after - 2 * 86400, through: after + horizon + 2 * 86400, by: 900) { offsets.insert(offset(u)) }
        let start = CivilTime.floorDivide(after, 60) * 60
        let seconds = e.seconds.sorted()
        var minute = start
        while minute <= after + horizon {
            // A minute with no change of offset in or just before it, whose wall-clock minute
            // does not match, holds no slot: skip its seconds.
            let minuteOffset = offset(minute)
            if minuteOffset % 60 == 0, minuteOffset == offset(minute - 1), minuteOffset == offset(minute + 59) {
                if !matches(local: minute + minuteOffset, ignoringSecond: true) {
                    minute += 60
                    continue
                }
            }
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
    func randomAgreement() async throws {
        let (compared, found, disagreements) = try await offThePool {
            try Self.compare(rounds: 1500, seed: 20_261_123, horizonDays: 2) { _, rng in (Self.randomExpression(using: &rng), nil) }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count) disagree: \(disagreements.prefix(20).joined(separator: "; "))")
        #expect(compared > 1000)
        #expect(found > 500, "too few expressions fired inside the window to mean anything")
    }

    /// The engine against the reference on `rounds` expressions from `make` (given the round,
    /// returning the expression and its hash key), each in a random zone and DST policy, after
    /// an instant near one of the zone's changes between 1995 and 2045. Returns how many were
    /// compared and how many fired within `horizonDays`.
    static func compare(
        rounds: Int, seed: UInt64, horizonDays: Int64, make: (Int, inout SplitMix64) -> (RandomExpression, String?)
    ) throws -> (compared: Int, found: Int, disagreements: [String]) {
        var rng = SplitMix64(seed: seed)
        let policies = [DSTPolicy.default, DSTPolicy(skipped: .shift, repeated: .once),
                        DSTPolicy(skipped: .skip, repeated: .twice), DSTPolicy(skipped: .shift, repeated: .twice)]
        var (compared, found, disagreements) = (0, 0, [String]())
        for round in 0..<rounds {
            let (e, key) = make(round, &rng)
            let zoneName = zones.randomElement(using: &rng)!
            let zone = try TimeZoneDatabase.system.rules(for: zoneName)
            let policy = policies.randomElement(using: &rng)!
            // An instant near a transition (or any instant, for fixed zones).
            let year = Int64.random(in: 1995...2045, using: &rng)
            let from = CivilTime.days(year: year, month: 1, day: 1) * 86400
            let changes = zone.transitions(from: Instant(secondsSinceEpoch: from), to: Instant(secondsSinceEpoch: from + 366 * 86400))
            let pivot = changes.randomElement(using: &rng)?.instant.secondsSinceEpoch ?? from + Int64.random(in: 0..<(365 * 86400), using: &rng)
            let after = pivot + Int64.random(in: -(36 * 3600)...(12 * 3600), using: &rng)
            let horizon = horizonDays * 86400
            let schedule: CronSchedule
            do {
                schedule = try CronSchedule(parsing: e.text, zone: zone, dst: policy, hashKey: key)
            } catch {
                continue  // an expression that never fires (the parser's own tests check which)
            }
            let fast = schedule.nextSlot(after: Instant(secondsSinceEpoch: after))?.secondsSinceEpoch
            let reference = referenceSlot(e, zone: zone, policy: policy, after: after, horizon: horizon)
            let context = "\(e.text)\(key.map { " [\($0)]" } ?? "") in \(zoneName) after @\(after) \(policy)"
            compared += 1
            if let reference {
                found += 1
                if fast != reference { disagreements.append("\(context): engine @\(fast ?? 0), reference @\(reference)") }
            } else if let fast, fast <= after + horizon {
                disagreements.append("\(context): engine gave @\(fast), reference none within \(horizonDays) days")
            }
        }
        return (compared, found, disagreements)
    }
}

/// The same search for the forms that came from other crons: `L`, `L-n`, `nW`, `LW`, `n-L`,
/// `nL`, `n#k` and Jenkins' `H`. The day items are written from the manual's table; `H` resolves
/// with `CronHash.value` (pinned by its own test) to the range and step the manual gives.
@Suite("Dialects against a brute-force reference")
struct DialectReferenceTests {
    typealias Rule = (Int, Int, Int) -> Bool

    /// One day-of-month item that depends on the month, with its rule.
    static func monthDayItem(using rng: inout some RandomNumberGenerator) -> (String, Rule) {
        switch Int.random(in: 0..<5, using: &rng) {
        case 0: return ("L", { day, _, length in day == length })
        case 1:
            let n = Int.random(in: 0...30, using: &rng)
            return ("L-\(n)", { day, _, length in day == length - n })
        case 2:
            let n = Int.random(in: 1...31, using: &rng)
            return ("\(n)W", { day, weekday, length in
                guard n <= length else { return false }
                // The weekday of day n, from this day's.
                let weekdayOfN = ((weekday + n - day) % 7 + 7) % 7
                switch weekdayOfN {
                case 6: return day == (n == 1 ? 3 : n - 1)  // Saturday: the Friday before, or Monday the 3rd
                case 0: return day == (n == length ? n - 2 : n + 1)  // Sunday: the Monday after, or the Friday before
                default: return day == n
                }
            })
        case 3:
            return ("LW", { day, weekday, length in
                let weekdayOfLast = ((weekday + length - day) % 7 + 7) % 7
                let last = length - (weekdayOfLast == 6 ? 1 : weekdayOfLast == 0 ? 2 : 0)
                return day == last
            })
        default:
            let n = Int.random(in: 1...31, using: &rng)
            return ("\(n)-L", { day, _, _ in day >= n })
        }
    }

    /// One day-of-week item that depends on the month.
    static func weekdayItem(using rng: inout some RandomNumberGenerator) -> (String, Rule) {
        let n = Int.random(in: 0...6, using: &rng)
        if Bool.random(using: &rng) {
            return ("\(n)L", { day, weekday, length in weekday == n && day + 7 > length })
        }
        let k = Int.random(in: 1...5, using: &rng)
        return ("\(n)#\(k)", { day, weekday, _ in weekday == n && (day - 1) / 7 + 1 == k })
    }

    /// An `H` item for field `index` (second 0 ... day of week 5), with the values it stands for.
    static func hashItem(field index: Int, key: String, using rng: inout some RandomNumberGenerator) -> (String, Set<Int>) {
        let whole: [ClosedRange<Int>] = [0...59, 0...59, 0...23, 1...28, 1...12, 0...6]
        var range = whole[index]
        var text = "H"
        if Bool.random(using: &rng) {
            let full: [ClosedRange<Int>] = [0...59, 0...59, 0...23, 1...31, 1...12, 0...6]
            let a = Int.random(in: full[index], using: &rng)
            let b = Int.random(in: a...full[index].upperBound, using: &rng)
            range = a...b
            text += "(\(a)-\(b))"
        }
        let x = CronHash.value(key: key, field: index)
        if Bool.random(using: &rng) {
            let step = Int.random(in: 1...max(1, range.count), using: &rng)
            text += "/\(step)"
            let start = range.lowerBound + Int(x % UInt64(step))
            return (text, start <= range.upperBound ? Set(stride(from: start, through: range.upperBound, by: step)) : [range.lowerBound])
        }
        return (text, [range.lowerBound + Int(x % UInt64(range.count))])
    }

    static func randomExpression(key: String, using rng: inout some RandomNumberGenerator) -> ReferenceSearchTests.RandomExpression {
        var e = ReferenceSearchTests.randomExpression(using: &rng)
        var fields = e.text.split(separator: " ").map(String.init)
        let hasSeconds = fields.count == 6
        if !hasSeconds { fields.insert("0", at: 0) }
        // Day of month: month-dependent items, alone or beside a plain day.
        if Int.random(in: 0..<3, using: &rng) > 0 {
            let (item, rule) = monthDayItem(using: &rng)
            e.monthDayRules = [rule]
            if Bool.random(using: &rng) {
                let plain = Int.random(in: 1...31, using: &rng)
                fields[3] = "\(item),\(plain)"
                e.daysOfMonth = [plain]
            } else {
                fields[3] = item
                e.daysOfMonth = []
            }
            e.domStar = false
        }
        if Int.random(in: 0..<3, using: &rng) == 0 {
            let (item, rule) = weekdayItem(using: &rng)
            (fields[5], e.weekdays, e.weekdayRules, e.dowStar) = (item, [], [rule], false)
        }
        // H in one or two fields (not the seconds of a five-field expression).
        for _ in 0..<Int.random(in: 1...2, using: &rng) {
            let index = Int.random(in: hasSeconds ? 0...5 : 1...5, using: &rng)
            let (item, values) = hashItem(field: index, key: key, using: &rng)
            fields[index] = item
            switch index {
            case 0: e.seconds = values
            case 1: e.minutes = values
            case 2: e.hours = values
            case 3: (e.daysOfMonth, e.monthDayRules, e.domStar) = (values, [], false)
            case 4: e.months = values
            default: (e.weekdays, e.weekdayRules, e.dowStar) = (values, [], false)
            }
        }
        e.text = fields.dropFirst(hasSeconds ? 0 : 1).joined(separator: " ")
        return e
    }

    @Test("random expressions with L, W, nL, #k and H, around DST transitions, agree with the reference")
    func randomAgreement() async throws {
        // Month-dependent days are sparse: look 40 days ahead.
        let (compared, found, disagreements) = try await offThePool {
            try ReferenceSearchTests.compare(rounds: 1000, seed: 20_261_201, horizonDays: 40) { round, rng in
                let key = "env\(round % 7).task\(round) trigger"
                return (Self.randomExpression(key: key, using: &rng), key)
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count) disagree: \(disagreements.prefix(20).joined(separator: "; "))")
        #expect(compared > 700)
        #expect(found > 350, "too few expressions fired inside the window to mean anything")
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
