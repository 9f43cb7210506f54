/// The POSIX TZ string at the end of a TZif file (RFC 8536 §3.3), e.g. `EST5EDT,M3.2.0,M11.1.0`:
/// the rule that holds for every instant after the file's table of transitions.
struct PosixTimeZoneRule: Hashable, Sendable {
    /// When DST starts or ends in a year, as a day rule plus a local time of day.
    enum Day: Hashable, Sendable {
        case julianNoLeap(Int)  // Jn: 1-365, February 29 is never counted
        case zeroBased(Int)  // n: 0-365, February 29 counted in leap years
        case monthWeekDay(month: Int, week: Int, weekday: Int)  // Mm.w.d, week 5 = last
    }

    struct Change: Hashable, Sendable {
        var day: Day
        var secondOfDay: Int64  // may be negative or beyond 24h (RFC 8536 extension)
    }

    let standardName: String
    let standardOffset: Int32  // seconds east of UTC
    let daylightName: String?
    let daylightOffset: Int32
    let daylightStart: Change?
    let daylightEnd: Change?

    var hasDaylightTime: Bool { daylightName != nil && daylightStart != nil && daylightEnd != nil }

    /// Offset changes in the given year, as (UTC instant, offset from then on, name), sorted.
    func changes(inYear year: Int64) -> [(instant: Int64, offset: Int32, name: String)] {
        guard hasDaylightTime, let daylightName else { return [] }
        let (start, end) = changeInstants(inYear: year)
        return [(start, daylightOffset, daylightName), (end, standardOffset, standardName)].sorted { $0.0 < $1.0 }
    }

    /// When daylight time starts and ends in `year`, as UTC instants: the start is given in
    /// standard local time, the end in daylight local time.
    @inline(__always)
    private func changeInstants(inYear year: Int64) -> (start: Int64, end: Int64) {
        (daylightStart.unsafelyUnwrapped.localSeconds(inYear: year) - Int64(standardOffset),
         daylightEnd.unsafelyUnwrapped.localSeconds(inYear: year) - Int64(daylightOffset))
    }

    /// The two offset changes of `year` as (UTC instant, offset from then on), ascending, for a
    /// rule with daylight time: `changes(inYear:)` without the names and the array.
    @inline(__always)
    func offsetChanges(inYear year: Int64) -> ((instant: Int64, offset: Int32), (instant: Int64, offset: Int32)) {
        let instants = changeInstants(inYear: year)
        let start = (instant: instants.start, offset: daylightOffset)
        let end = (instant: instants.end, offset: standardOffset)
        return start.instant <= end.instant ? (start, end) : (end, start)
    }

    /// Parses a TZ string; nil when it is not one this reader understands.
    init?(_ text: String) {
        var scanner = Scanner(Array(text.utf8))
        guard let std = scanner.name(), let stdOffset = scanner.offset() else { return nil }
        standardName = std
        standardOffset = Int32(-stdOffset)  // POSIX offsets are positive west of Greenwich
        if scanner.atEnd {
            (daylightName, daylightOffset, daylightStart, daylightEnd) = (nil, standardOffset, nil, nil)
            return
        }
        guard let dst = scanner.name() else { return nil }
        daylightName = dst
        if let explicit = scanner.offset() {
            daylightOffset = Int32(-explicit)
        } else {
            daylightOffset = standardOffset + 3600
        }
        if scanner.atEnd {
            // No rule given: the US rule of 2007, as tzcode assumes.
            daylightStart = Change(day: .monthWeekDay(month: 3, week: 2, weekday: 0), secondOfDay: 7200)
            daylightEnd = Change(day: .monthWeekDay(month: 11, week: 1, weekday: 0), secondOfDay: 7200)
            return
        }
        guard scanner.take(","), let start = scanner.change(), scanner.take(","),
            let end = scanner.change(), scanner.atEnd
        else { return nil }
        daylightStart = start
        daylightEnd = end
    }
}

extension PosixTimeZoneRule.Change {
    /// Local seconds since 1970 at which the change happens in `year`.
    func localSeconds(inYear year: Int64) -> Int64 {
        let days: Int64
        switch day {
        case .julianNoLeap(let n):
            // Day n of a 365-day year: in leap years, days after February are one later.
            let leapShift: Int64 = CivilTime.isLeapYear(year) && n >= 60 ? 1 : 0
            days = CivilTime.days(year: year, month: 1, day: 1) + Int64(n - 1) + leapShift
        case .zeroBased(let n):
            days = CivilTime.days(year: year, month: 1, day: 1) + Int64(n)
        case .monthWeekDay(let month, let week, let weekday):
            let first = CivilTime.days(year: year, month: month, day: 1)
            var day = first + Int64((weekday - CivilTime.weekday(days: first) + 7) % 7) + Int64(7 * (week - 1))
            let length = Int64(CivilTime.daysInMonth(year: year, month: month))
            while day >= first + length { day -= 7 }
            days = day
        }
        return days * CivilTime.secondsPerDay + secondOfDay
    }
}

/// A tiny cursor over the bytes of a TZ string.
private struct Scanner {
    let bytes: [UInt8]
    var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { index == bytes.count }

    mutating func take(_ character: Character) -> Bool {
        guard index < bytes.count, bytes[index] == character.asciiValue else { return false }
        index += 1
        return true
    }

    /// `EST` or `<+0545>`.
    mutating func name() -> String? {
        if take("<") {
            let start = index
            while index < bytes.count, bytes[index] != UInt8(ascii: ">") { index += 1 }
            guard index < bytes.count else { return nil }
            let name = String(decoding: bytes[start..<index], as: UTF8.self)
            index += 1
            return name
        }
        let start = index
        while index < bytes.count, (bytes[index] | 0x20) >= UInt8(ascii: "a"), (bytes[index] | 0x20) <= UInt8(ascii: "z") {
            index += 1
        }
        return index - start >= 3 ? String(decoding: bytes[start..<index], as: UTF8.self) : nil
    }

    mutating func number() -> Int? {
        let start = index
        var value = 0
        while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
            value = value * 10 + Int(bytes[index] - UInt8(ascii: "0"))
            index += 1
        }
        return index > start ? value : nil
    }

    /// `[+-]hh[:mm[:ss]]` in seconds.
    mutating func offset() -> Int? {
        let save = index
        var sign = 1
        if take("-") { sign = -1 } else { _ = take("+") }
        guard let hours = number() else {
            index = save
            return nil
        }
        var seconds = hours * 3600
        if take(":") {
            guard let minutes = number() else { return nil }
            seconds += minutes * 60
            if take(":") {
                guard let s = number() else { return nil }
                seconds += s
            }
        }
        return sign * seconds
    }

    /// `Jn`, `n` or `Mm.w.d`, optionally followed by `/time`.
    mutating func change() -> PosixTimeZoneRule.Change? {
        let day: PosixTimeZoneRule.Day
        if take("J") {
            guard let n = number(), (1...365).contains(n) else { return nil }
            day = .julianNoLeap(n)
        } else if take("M") {
            guard let m = number(), take("."), let w = number(), take("."), let d = number(),
                (1...12).contains(m), (1...5).contains(w), (0...6).contains(d)
            else { return nil }
            day = .monthWeekDay(month: m, week: w, weekday: d)
        } else {
            guard let n = number(), (0...365).contains(n) else { return nil }
            day = .zeroBased(n)
        }
        var time: Int64 = 7200
        if take("/") {
            guard let t = offset() else { return nil }
            time = Int64(t)
        }
        return PosixTimeZoneRule.Change(day: day, secondOfDay: time)
    }
}
