/// Durations as people write them in schedules: `30s`, `90m`, `6h`, `1h30m`, `2d`, `250ms`.
public enum DurationText {
    private static let units: [(suffix: String, milliseconds: Int64)] = [
        ("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000),
    ]

    /// Parses a duration into milliseconds. Each part is a whole number followed by a unit; parts
    /// go from the largest unit to the smallest (`1h30m`, not `30m1h`). A bare number is rejected,
    /// because nobody can tell whether `90` meant seconds or minutes.
    public static func milliseconds(_ text: String, field: String) throws(ScheduleError) -> Int64 {
        let problem = "is not a duration: write a number followed by a unit (ms, s, m, h, d), e.g. 30s, 90m, 1h30m"
        var rest = Substring(text.trimmingWhitespace().text)
        guard !rest.isEmpty else { throw ScheduleError(field: field, text: text, problem: problem) }
        var total: Int64 = 0
        var lastUnitSize = Int64.max
        while !rest.isEmpty {
            let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
            guard !digits.isEmpty, digits.count <= 12, let number = Int64(digits) else {
                let negative = rest.hasPrefix("-")
                throw ScheduleError(field: field, text: text, problem: negative ? "must not be negative" : problem)
            }
            rest = rest.dropFirst(digits.count)
            let letters = rest.prefix(while: { $0.isLetter })
            guard let unit = units.first(where: { $0.suffix == letters.lowercased() }) else {
                throw ScheduleError(field: field, text: text, problem: problem)
            }
            guard unit.milliseconds < lastUnitSize else {
                throw ScheduleError(field: field, text: text, problem: "repeats or misorders units: write them largest first, e.g. 1h30m")
            }
            lastUnitSize = unit.milliseconds
            rest = rest.dropFirst(letters.count)
            total += number * unit.milliseconds
        }
        return total
    }

    /// Parses a duration that must be a whole, positive number of seconds (a fixed rate's interval).
    public static func wholeSeconds(_ text: String, field: String) throws(ScheduleError) -> Int64 {
        let ms = try milliseconds(text, field: field)
        guard ms >= 1000 else { throw ScheduleError(field: field, text: text, problem: "must be at least 1s") }
        guard ms % 1000 == 0 else {
            throw ScheduleError(field: field, text: text, problem: "must be a whole number of seconds")
        }
        return ms / 1000
    }
}
