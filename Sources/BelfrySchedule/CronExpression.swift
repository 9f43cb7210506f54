/// A parsed cron expression: one bit set per field, matched against wall-clock times.
///
/// The expression knows nothing about time zones: `nextMatch(atOrAfter:)` works on "local seconds"
/// (seconds since 1970-01-01 00:00 on the wall clock of some zone). `CronSchedule` maps those to
/// instants with the zone's DST rules.
public struct CronExpression: Hashable, Sendable, CustomStringConvertible {
    /// The text it was parsed from, as given.
    public let source: String
    /// The same with every `H` replaced by what it resolved to (`H * * * *` → `37 * * * *`);
    /// the source when it has none.
    public let resolved: String
    /// Legal but surprising forms (a step larger than its field's span), positioned as errors are.
    public let warnings: [CronError]

    // Bit n set = value n matches.
    let seconds: UInt64  // 0-59
    let minutes: UInt64  // 0-59
    let hours: UInt64  // 0-23
    let daysOfMonth: UInt64  // 1-31
    let months: UInt64  // 1-12
    /// The day-of-week set (bits 0-6, Sunday = 0) repeated along 64 bits, so that the days of a month
    /// whose first day is weekday `w` are `(weekdayPattern >> w) << 1`.
    let weekdayPattern: UInt64
    /// Day-of-month items that depend on the month: `L`, `L-n`, `nW`, `LW`, `n-L`.
    let monthDays: MonthDays
    let lastWeekdays: UInt8  // `nL`: bit n
    let nthWeekdays: UInt64  // `n#k`: bit (k-1)*7 + n
    /// Vixie cron's rule: when both day fields are restricted, a day matches if either matches.
    let eitherDayMatches: Bool

    public var description: String { source }

    init(
        source: String, resolved: String, warnings: [CronError], seconds: UInt64, minutes: UInt64, hours: UInt64, daysOfMonth: UInt64,
        monthDays: MonthDays, months: UInt64, daysOfWeek: UInt64, lastWeekdays: UInt8,
        nthWeekdays: UInt64, daysOfMonthRestricted: Bool, daysOfWeekRestricted: Bool
    ) {
        self.source = source
        self.resolved = resolved
        self.warnings = warnings
        self.seconds = seconds
        self.minutes = minutes
        self.hours = hours
        self.daysOfMonth = daysOfMonth
        self.monthDays = monthDays
        self.months = months
        var pattern: UInt64 = 0
        for position in 0..<64 where daysOfWeek & (1 << (position % 7)) != 0 {
            pattern |= 1 << position
        }
        self.weekdayPattern = pattern
        self.lastWeekdays = lastWeekdays
        self.nthWeekdays = nthWeekdays
        self.eitherDayMatches = daysOfMonthRestricted && daysOfWeekRestricted
    }

    /// The days (bit d = day d) of the given month on which the expression fires.
    @inline(__always)
    func days(year: Int64, month: Int) -> UInt64 {
        let length = CivilTime.daysInMonth(year: year, month: month)
        let valid: UInt64 = ((1 << UInt64(length + 1)) - 1) & ~1
        let firstWeekday = CivilTime.weekday(days: CivilTime.days(year: year, month: month, day: 1))
        var byMonthDay = daysOfMonth
        if !monthDays.isEmpty { byMonthDay |= monthDays.days(length: length, firstWeekday: firstWeekday) }
        var byWeekday = (weekdayPattern &>> UInt64(firstWeekday)) &<< 1
        if lastWeekdays != 0 || nthWeekdays != 0 {
            byWeekday |= specialWeekdays(firstWeekday: firstWeekday, length: length)
        }
        let matching = eitherDayMatches ? byMonthDay | byWeekday : byMonthDay & byWeekday
        return matching & valid
    }

    /// Days matched by `nL` and `n#k` items.
    private func specialWeekdays(firstWeekday: Int, length: Int) -> UInt64 {
        var result: UInt64 = 0
        for weekday in 0..<7 {
            let first = 1 + (weekday - firstWeekday + 7) % 7  // first such weekday of the month
            if lastWeekdays & (1 << weekday) != 0 {
                result |= 1 << UInt64(first + (length - first) / 7 * 7)
            }
            for k in 0..<5 where nthWeekdays & (1 << UInt64(k * 7 + weekday)) != 0 {
                let day = first + 7 * k
                if day <= length { result |= 1 << UInt64(day) }
            }
        }
        return result
    }

    /// The first wall-clock time at or after `local` (seconds since 1970-01-01 00:00 on a wall clock)
    /// that matches every field, or nil when there is none before the year 9999.
    ///
    /// The Gregorian calendar repeats every 400 years (146,097 days, a whole number of weeks), so a
    /// search that finds nothing in 400 years would find nothing ever.
    public func nextMatch(atOrAfter local: Int64) -> Int64? {
        var (year, month, day, hour, minute, second) = CivilTime.components(local)
        let lastYear = Swift.min(year + 401, 9999)
        var dayMask: UInt64 = 0
        var dayMaskMonth = 0  // month (year*16+month) dayMask was computed for
        while true {
            if months & (1 << UInt64(month)) == 0 {
                let later = bits(months, from: month)
                if later == 0 {
                    year += 1
                    month = months.trailingZeroBitCount
                } else {
                    month = later.trailingZeroBitCount
                }
                (day, hour, minute, second) = (1, 0, 0, 0)
            }
            if year > lastYear { return nil }
            let key = Int(year) * 16 + month
            if key != dayMaskMonth {
                dayMask = days(year: year, month: month)
                dayMaskMonth = key
            }
            let laterDays = bits(dayMask, from: day)
            if laterDays == 0 {
                month += 1
                if month > 12 {
                    month = 1
                    year += 1
                }
                (day, hour, minute, second) = (1, 0, 0, 0)
                continue
            }
            let matchedDay = laterDays.trailingZeroBitCount
            if matchedDay != day { (day, hour, minute, second) = (matchedDay, 0, 0, 0) }

            let laterHours = bits(hours, from: hour)
            if laterHours == 0 {
                (day, hour, minute, second) = (day + 1, 0, 0, 0)
                continue
            }
            let matchedHour = laterHours.trailingZeroBitCount
            if matchedHour != hour { (hour, minute, second) = (matchedHour, 0, 0) }

            let laterMinutes = bits(minutes, from: minute)
            if laterMinutes == 0 {
                (hour, minute, second) = (hour + 1, 0, 0)
                continue
            }
            let matchedMinute = laterMinutes.trailingZeroBitCount
            if matchedMinute != minute { (minute, second) = (matchedMinute, 0) }

            let laterSeconds = bits(seconds, from: second)
            if laterSeconds == 0 {
                (minute, second) = (minute + 1, 0)
                continue
            }
            second = laterSeconds.trailingZeroBitCount
            return CivilTime.seconds(
                year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        }
    }

    /// The bits of `mask` at position `n` and above (n < 64).
    @inline(__always)
    private func bits(_ mask: UInt64, from n: Int) -> UInt64 {
        mask & (UInt64.max &<< UInt64(n))
    }
}

/// The day-of-month items whose days depend on the month's length and first weekday.
struct MonthDays: Hashable, Sendable {
    /// `L-k`: bit k (`L` is `L-0`).
    var beforeLast: UInt32 = 0
    /// `nW`: bit n, the weekday (Monday to Friday) nearest day n, in the same month.
    var nearestWeekday: UInt32 = 0
    /// `LW`: the last weekday of the month.
    var lastWeekday = false
    /// `n-L`: from day n to the last; 0 when absent (the smallest n when several).
    var throughLast = 0

    var isEmpty: Bool { beforeLast == 0 && nearestWeekday == 0 && !lastWeekday && throughLast == 0 }

    /// Bit d set: day d matches, in a month of `length` days whose 1st is `firstWeekday` (0 = Sunday).
    func days(length: Int, firstWeekday: Int) -> UInt64 {
        var result: UInt64 = 0
        var offsets = beforeLast
        while offsets != 0 {
            let k = offsets.trailingZeroBitCount
            offsets &= offsets - 1
            if length - k >= 1 { result |= 1 << UInt64(length - k) }
        }
        if throughLast != 0, throughLast <= length {
            result |= (UInt64.max &<< UInt64(throughLast)) & ((1 << UInt64(length + 1)) - 1)
        }
        if lastWeekday {
            switch (firstWeekday + length - 1) % 7 {
            case 6: result |= 1 << UInt64(length - 1)  // a Saturday: the Friday before
            case 0: result |= 1 << UInt64(length - 2)  // a Sunday: the Friday before
            default: result |= 1 << UInt64(length)
            }
        }
        var targets = nearestWeekday
        while targets != 0 {
            let n = targets.trailingZeroBitCount
            targets &= targets - 1
            guard n <= length else { continue }  // `31W` in a 30-day month: no day
            switch (firstWeekday + n - 1) % 7 {
            case 6: result |= 1 << UInt64(n == 1 ? 3 : n - 1)  // Saturday: Friday, or Monday the 3rd
            case 0: result |= 1 << UInt64(n == length ? n - 2 : n + 1)  // Sunday: Monday, or Friday at the month's end
            default: result |= 1 << UInt64(n)
            }
        }
        return result
    }
}
