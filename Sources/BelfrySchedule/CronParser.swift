extension CronExpression {
    /// The `@` macros and the five-field expressions they stand for.
    public static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
        "@hourly": "0 * * * *", "@minutely": "* * * * *",
    ]

    /// Parses a 5-field (`minute hour day-of-month month day-of-week`) or 6-field (leading `second`)
    /// expression, or a macro. Rejects, with the field, the text and the allowed values: values out
    /// of range, reversed ranges, step 0, empty items, unknown names, a wrong field count,
    /// `@reboot` and unknown macros, `H` without a `hashKey`, and expressions that never fire.
    /// A step larger than its field's span is Vixie cron's (the first value only), with a warning.
    ///
    /// `hashKey` places each `H` (Jenkins' hash): in a deployment `ENV.TASK TRIGGER`. See
    /// `CronHash` for the function, which never changes.
    public init(parsing text: String, hashKey: String? = nil) throws(CronError) {
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
        let hasSeconds = fields.count == 6
        if !hasSeconds { fields.insert(("0", 0), at: 0) }
        let specs: [FieldSpec] = [.second, .minute, .hour, .dayOfMonth, .month, .dayOfWeek]
        var parsed: [ParsedField] = []
        for (index, (spec, field)) in zip(specs, fields).enumerated() {
            let hash = hashKey.map { CronHash.value(key: $0, field: index) }
            parsed.append(try spec.parse(field.text, column: field.column, hash: hash))
        }
        let dayOfWeek = parsed[5]
        var resolved = text
        if parsed.contains(where: \.hashed) {
            resolved = parsed.dropFirst(hasSeconds ? 0 : 1).map(\.resolved).joined(separator: " ")
        }
        let expression = CronExpression(
            source: text, resolved: resolved, warnings: parsed.flatMap(\.warnings),
            seconds: parsed[0].values, minutes: parsed[1].values, hours: parsed[2].values,
            daysOfMonth: parsed[3].values, monthDays: parsed[3].monthDays, months: parsed[4].values,
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
    var monthDays = MonthDays()  // `L`, `L-n`, `nW`, `LW`, `n-L` in day-of-month
    var lastWeekdays: UInt64 = 0  // `nL` in day-of-week
    var nthWeekdays: UInt64 = 0  // `n#k` in day-of-week
    /// The field's text with each `H` item replaced by what it resolved to.
    var resolved = ""
    var hashed = false
    var warnings: [CronError] = []
}

/// Jenkins' `H`, fixed forever (a changed function would move every hashed job): the key's
/// UTF-8 bytes through 64-bit FNV-1a, then for field `f` (second 0, minute 1, hour 2,
/// day-of-month 3, month 4, day-of-week 5) SplitMix64's finalizer of that hash plus
/// `f × 0x9E3779B97F4A7C15`. `H(a-b)` is `a + x mod (b − a + 1)`; `H/n` starts at
/// `a + x mod n` and steps by n. Plain `H` ranges over the whole field, except day-of-month,
/// which uses 1-28 so that every month has the day.
public enum CronHash {
    public static func value(key: String, field: Int) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x100_0000_01b3
        }
        var z = hash &+ UInt64(field) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
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

    /// `hash`: the trigger's hash for this field, nil when it has no key.
    func parse(_ text: Substring, column: Int, hash: UInt64? = nil) throws(CronError) -> ParsedField {
        var result = ParsedField()
        let dayField = field == .dayOfMonth || field == .dayOfWeek
        // Literal, as in Vixie cron: `*/100,1-7` is restricted to nothing, so "starts with `*`".
        result.restricted = !(text.hasPrefix("*") || (dayField && text.hasPrefix("?")))
        var itemColumn = column
        var resolvedItems: [String] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            defer { itemColumn += item.count + 1 }
            guard !item.isEmpty else {
                throw error(text, "has an empty item (two commas in a row, or a comma at an end)", column: column)
            }
            if item.first == "H" || item.first == "h" {
                resolvedItems.append(try parseHash(item, column: itemColumn, hash: hash, into: &result))
                result.hashed = true
            } else {
                try parseItem(item, column: itemColumn, into: &result)
                resolvedItems.append(String(item))
            }
        }
        result.resolved = resolvedItems.joined(separator: ",")
        return result
    }

    /// `H`, `H(a-b)`, `H/n`, `H(a-b)/n`: sets the values and returns the item as resolved.
    private func parseHash(_ item: Substring, column: Int, hash: UInt64?, into result: inout ParsedField) throws(CronError) -> String {
        var rest = item.dropFirst()
        var (low, high) = (min, field == .dayOfMonth ? 28 : wildcardMax)
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { throw error(item, "has \"(\" without \")\"", column: column) }
            let range = rest[rest.index(after: rest.startIndex)..<close]
            guard let dash = range.firstIndex(of: "-"), dash != range.startIndex else {
                throw error(item, "needs a range inside H(...), as H(0-29)", column: column)
            }
            low = try value(range[..<dash].uppercased()[...], item: item, column: column)
            high = try value(range[range.index(after: dash)...].uppercased()[...], item: item, column: column)
            guard low <= high else { throw error(item, "is a reversed range (\(low) is after \(high))", column: column) }
            if field == .dayOfWeek { (low, high) = (low, Swift.min(high, 7)) }
            rest = rest[rest.index(after: close)...]
        }
        var step: Int?
        if rest.first == "/" {
            guard let s = Int(rest.dropFirst()), rest.dropFirst().allSatisfy({ $0.isASCII && $0.isNumber }) else {
                throw error(item, "has step \"\(rest.dropFirst())\", which is not a whole number", column: column)
            }
            guard s > 0 else { throw error(item, "has step 0", column: column) }
            step = s
        } else if !rest.isEmpty {
            throw error(item, "is not H, H(a-b), H/n or H(a-b)/n", column: column)
        }
        guard let hash else {
            throw error(item, "needs a hash key: in a definition file it is the trigger's ENV.TASK TRIGGER; for belfry next, give --hash-key", column: column)
        }
        if let step {
            let start = low + Int(hash % UInt64(step))
            guard start <= high else {
                result.values |= bits(low, low, step: 1)  // a step larger than the range: its first value
                return "\(low)"
            }
            result.values |= bits(start, high, step: step)
            return start + step > high ? "\(start)" : "\(start)-\(high)/\(step)"
        }
        let chosen = low + Int(hash % UInt64(high - low + 1))
        result.values |= bits(chosen, chosen, step: 1)
        return "\(chosen)"
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
        if field == .dayOfMonth, upper.hasPrefix("L") {
            if upper == "L" {
                result.monthDays.beforeLast |= 1
            } else if upper == "LW" {
                result.monthDays.lastWeekday = true
            } else if upper.hasPrefix("L-") {
                guard let k = Int(upper.dropFirst(2)), upper.dropFirst(2).allSatisfy(\.isNumber), (0...30).contains(k) else {
                    throw error(item, "has \"\(upper.dropFirst(2))\" after L-, but n in L-n must be 0-30", column: column)
                }
                result.monthDays.beforeLast |= 1 << UInt32(k)
            } else {
                throw error(item, "is not L, L-n or LW", column: column)
            }
            return
        }
        if field == .dayOfMonth, upper.count > 1, upper.hasSuffix("W") {
            let day = try value(upper.dropLast(), item: item, column: column)
            result.monthDays.nearestWeekday |= 1 << UInt32(day)
            return
        }
        if field == .dayOfMonth, upper.hasSuffix("-L"), upper.count > 2 {
            let day = try value(upper.dropLast(2), item: item, column: column)
            result.monthDays.throughLast = result.monthDays.throughLast == 0 ? day : Swift.min(result.monthDays.throughLast, day)
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
            guard s <= 9999 else { throw error(item, "has step \(s), which is out of range", column: column) }
            if s > wildcardMax - min {
                result.warnings.append(error(item, "has step \(s), larger than the field's span of \(wildcardMax - min): it means the first value only, as in Vixie cron", column: column))
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
