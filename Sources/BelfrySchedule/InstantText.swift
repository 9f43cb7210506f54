/// Instants as people write them: RFC 3339 with an offset (`2026-03-08T01:30:00-05:00`, `...Z`),
/// a local date-time read in a zone (`2026-03-08T01:30`, `2026-03-08 01:30:00`, `2026-03-08`), or
/// `@SECONDS` since the epoch.
public enum InstantText {
    /// Parses `text`. A local date-time is read on `zone`'s wall clock: a time shown twice means
    /// its first occurrence, a time inside a DST gap means the first instant after the gap.
    public static func parse(_ text: String, zone: ZoneRules, field: String) throws(ScheduleError) -> Instant {
        let problem = "is not a time: use RFC 3339 (2026-03-08T01:30:00Z or with an offset such as -05:00), a local date-time (2026-03-08T01:30), or @EPOCH_SECONDS"
        let bytes = Array(text.trimmingWhitespace().text.utf8)
        if bytes.first == UInt8(ascii: "@") {
            guard bytes.count > 1, bytes.count <= 13,
                let seconds = Int64(String(decoding: bytes.dropFirst(), as: UTF8.self)),
                seconds >= 0 || bytes[1] == UInt8(ascii: "-")
            else { throw ScheduleError(field: field, text: text, problem: problem) }
            return Instant(secondsSinceEpoch: seconds)
        }
        var cursor = 0
        func number(_ width: Int) -> Int? {
            guard cursor + width <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[cursor..<cursor + width] {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            cursor += width
            return value
        }
        func take(_ characters: String) -> Bool {
            guard cursor < bytes.count, characters.utf8.contains(bytes[cursor]) else { return false }
            cursor += 1
            return true
        }
        guard let year = number(4), take("-"), let month = number(2), take("-"), let day = number(2) else {
            throw ScheduleError(field: field, text: text, problem: problem)
        }
        var (hour, minute, second) = (0, 0, 0)
        if take("Tt ") {
            guard let h = number(2), take(":"), let m = number(2) else {
                throw ScheduleError(field: field, text: text, problem: problem)
            }
            (hour, minute) = (h, m)
            if take(":") {
                guard let s = number(2) else { throw ScheduleError(field: field, text: text, problem: problem) }
                second = s
                if take(".,") {
                    while cursor < bytes.count, bytes[cursor] >= UInt8(ascii: "0"), bytes[cursor] <= UInt8(ascii: "9") {
                        cursor += 1  // fractions of a second: slots are whole seconds
                    }
                }
            }
        }
        guard (1...12).contains(month), day >= 1, day <= CivilTime.daysInMonth(year: Int64(year), month: month),
            hour <= 23, minute <= 59, second <= 60
        else {
            throw ScheduleError(field: field, text: text, problem: "is not a valid date and time of day")
        }
        let local = CivilTime.seconds(
            year: Int64(year), month: month, day: day, hour: hour, minute: minute, second: Swift.min(second, 59))
        if cursor == bytes.count { return zone.instant(forLocal: local) }
        if take("Zz"), cursor == bytes.count { return Instant(secondsSinceEpoch: local) }
        let sign: Int64
        if take("+") { sign = 1 } else if take("-") { sign = -1 } else {
            throw ScheduleError(field: field, text: text, problem: problem)
        }
        guard let offsetHours = number(2), take(":"), let offsetMinutes = number(2), cursor == bytes.count,
            offsetHours <= 23, offsetMinutes <= 59
        else {
            throw ScheduleError(field: field, text: text, problem: problem)
        }
        return Instant(secondsSinceEpoch: local - sign * Int64(offsetHours * 3600 + offsetMinutes * 60))
    }
}
