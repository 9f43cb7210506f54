extension CronExpression {
    /// The `@` macros and the five-field expressions they stand for.
    public static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
        "@hourly": "0 * * * *", "@minutely": "* * * * *",
    ]

    /// Parses a 5-field (`minute hour day-of-month month day-of-week`) or 6-field (leading `second`)
    /// expression, or a macro. Rejects, with the field, the text and the allowed values: values out
    /// of range, reversed ranges, step 0 or larger than the field's span, empty items, unknown names,
    /// a wrong field count, `@reboot` and unknown macros, and expressions that never fire.
    public init(parsing text: String) throws(CronError) {
        let trimmed = text.trimmingWhitespace()
        var body = trimmed.text
        var offset = trimmed.leading
        if body.hasPrefix("@") {
            guard let expansion = Self.macros[body.lowercased()] else {
                let problem =
                    body.lowercased() == "@reboot"
                    ? "@reboot is not supported: a scheduler fires at instants, not at boot (use a systemd unit with WantedBy=multi-user.target)"
                    : "unknown macro \"\(body)\"; known macros: \(Self.macros.keys.sorted().joined(separator: ", "))"
                throw CronError(field: nil, text: body, problem: problem, column: offset + 1)
            }
            body = expansion
            offset = -1  // columns inside an expansion are meaningless; point at the macro
        }
        var fields: [(text: Substring, column: Int)] = []
        var index = body.startIndex
        var position = 0
        while index < body.endIndex {
            while index < body.endIndex, body[index] == " " || body[index] == "\t" {
                index = body.index(after: index)
                position += 1
            }
            let start = index
            let startPosition = position
            while index < body.endIndex, body[index] != " ", body[index] != "\t" {
                index = body.index(after: index)
                position += 1
            }
            if start < index {
                fields.append((body[start..<index], offset < 0 ? trimmed.leading + 1 : offset + startPosition + 1))
            }
        }
        guard fields.count == 5 || fields.count == 6 else {
            throw CronError(
                field: nil, text: text,
                problem: "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with a leading second), found \(fields.count) in \"\(text)\"",
                column: offset + 1)
        }
        if fields.count == 5 { fields.insert(("0", 0), at: 0) }
        let specs: [FieldSpec] = [.second, .minute, .hour, .dayOfMonth, .month, .dayOfWeek]
        var parsed: [ParsedField] = []
        for (spec, field) in zip(specs, fields) {
            parsed.append(try spec.parse(field.text, column: field.column))
        }
        let dayOfWeek = parsed[5]
        let expression = CronExpression(
            source: text, seconds: parsed[0].values, minutes: parsed[1].values, hours: parsed[2].values,
            daysOfMonth: parsed[3].values, lastDayOfMonth: parsed[3].last, months: parsed[4].values,
            daysOfWeek: dayOfWeek.values, lastWeekdays: UInt8(dayOfWeek.lastWeekdays),
            nthWeekdays: dayOfWeek.nthWeekdays, daysOfMonthRestricted: parsed[3].restricted,
            daysOfWeekRestricted: dayOfWeek.restricted)
        // 1970 is as good a start as any: the calendar repeats every 400 years.
        if expression.nextMatch(atOrAfter: 0) == nil {
            throw CronError(
                field: nil, text: text,
                problem: "\"\(text)\" never fires: no date matches its day-of-month, month and day-of-week fields",
                column: offset + 1)
        }
        self = expression
    }
}

/// One field after parsing.
struct ParsedField {
    var values: UInt64 = 0
    var restricted = true
    var last = false  // `L` in day-of-month
    var lastWeekdays: UInt64 = 0  // `nL` in day-of-week
    var nthWeekdays: UInt64 = 0  // `n#k` in day-of-week
}

/// The rules of one cron field.
struct FieldSpec {
    let field: CronError.Field
    let min: Int
    let max: Int  // highest value a user may write
    let wildcardMax: Int  // highest value `*` and `N/STEP` reach (6 for day-of-week, where 7 = 0)
    let names: [String]  // index + min = value

    static let second = FieldSpec(field: .second, min: 0, max: 59, wildcardMax: 59, names: [])
    static let minute = FieldSpec(field: .minute, min: 0, max: 59, wildcardMax: 59, names: [])
    static let hour = FieldSpec(field: .hour, min: 0, max: 23, wildcardMax: 23, names: [])
    static let dayOfMonth = FieldSpec(field: .dayOfMonth, min: 1, max: 31, wildcardMax: 31, names: [])
    static let month = FieldSpec(
        field: .month, min: 1, max: 12, wildcardMax: 12,
        names: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])
    static let dayOfWeek = FieldSpec(
        field: .dayOfWeek, min: 0, max: 7, wildcardMax: 6,
        names: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])

    private func error(_ text: some StringProtocol, _ problem: String, column: Int) -> CronError {
        CronError(field: field, text: String(text), problem: problem, column: column)
    }

    func parse(_ text: Substring, column: Int) throws(CronError) -> ParsedField {
        var result = ParsedField()
        let dayField = field == .dayOfMonth || field == .dayOfWeek
        result.restricted = !(text.hasPrefix("*") || (dayField && text.hasPrefix("?")))
        var itemColumn = column
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            defer { itemColumn += item.count + 1 }
            guard !item.isEmpty else {
                throw error(text, "has an empty item (two commas in a row, or a comma at an end)", column: column)
            }
            try parseItem(item, column: itemColumn, into: &result)
        }
        return result
    }

    private func parseItem(_ item: Substring, column: Int, into result: inout ParsedField) throws(CronError) {
        let upper = item.uppercased()
        if upper == "?" {
            guard field == .dayOfMonth || field == .dayOfWeek else {
                throw error(item, "is only allowed in the day-of-month and day-of-week fields", column: column)
            }
            result.values |= bits(min, wildcardMax, step: 1)
            return
        }
        if field == .dayOfMonth, upper == "L" {
            result.last = true
            return
        }
        if field == .dayOfWeek, upper.count > 1, upper.hasSuffix("L") {
            let weekday = try value(upper.dropLast(), item: item, column: column) % 7
            result.lastWeekdays |= 1 << UInt64(weekday)
            return
        }
        if field == .dayOfWeek, let hash = upper.firstIndex(of: "#") {
            let weekday = try value(upper[..<hash], item: item, column: column) % 7
            let kText = upper[upper.index(after: hash)...]
            guard let k = Int(kText), (1...5).contains(k) else {
                throw error(item, "has \"#\(kText)\", but k in n#k must be 1-5", column: column)
            }
            result.nthWeekdays |= 1 << UInt64((k - 1) * 7 + weekday)
            return
        }
        let parts = upper.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { throw error(item, "has more than one \"/\"", column: column) }
        var step = 1
        if parts.count == 2 {
            guard let s = Int(parts[1]), parts[1].allSatisfy(\.isASCII) else {
                throw error(item, "has step \"\(parts[1])\", which is not a whole number", column: column)
            }
            guard s > 0 else { throw error(item, "has step 0", column: column) }
            guard s <= wildcardMax - min else {
                throw error(item, "has step \(s), larger than the field's span of \(wildcardMax - min)", column: column)
            }
            step = s
        }
        let base = parts[0]
        let low: Int
        let high: Int
        if base == "*" {
            (low, high) = (min, wildcardMax)
        } else if let dash = base.firstIndex(of: "-"), dash != base.startIndex {
            low = try value(base[..<dash], item: item, column: column)
            high = try value(base[base.index(after: dash)...], item: item, column: column)
            guard low <= high else {
                throw error(item, "is a reversed range (\(low) is after \(high))", column: column)
            }
        } else {
            low = try value(base, item: item, column: column)
            high = parts.count == 2 ? Swift.max(low, wildcardMax) : low
        }
        result.values |= bits(low, high, step: step)
    }

    /// A number or a name in the field's range.
    private func value(_ text: Substring, item: Substring, column: Int) throws(CronError) -> Int {
        if text.isEmpty { throw error(item, "is missing a value", column: column) }
        if text.allSatisfy({ $0.isASCII && $0.isNumber }) {
            guard text.count <= 4, let v = Int(text), (min...max).contains(v) else {
                throw error(text, "is out of range", column: column)
            }
            return v
        }
        if let index = names.firstIndex(of: String(text)) { return index + min }
        if names.isEmpty {
            throw error(text, "is not a number", column: column)
        }
        throw error(text, "is not a known name", column: column)
    }

    /// Bits low, low+step, ... up to high; 7 in day-of-week is Sunday, bit 0.
    private func bits(_ low: Int, _ high: Int, step: Int) -> UInt64 {
        var result: UInt64 = 0
        for v in stride(from: low, through: high, by: step) {
            result |= 1 << UInt64(field == .dayOfWeek ? v % 7 : v)
        }
        return result
    }
}

extension String {
    /// The text without leading and trailing spaces, tabs and newlines, and how many characters
    /// were removed at the front (to keep error columns right).
    func trimmingWhitespace() -> (text: String, leading: Int) {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        let leading = prefix(while: isSpace).count
        let rest = dropFirst(leading)
        let trailing = rest.reversed().prefix(while: isSpace).count
        return (String(rest.dropLast(trailing)), leading)
    }
}
