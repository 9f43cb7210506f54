import Yams
import BelfrySchedule

/// One definition file's YAML tree, read with every problem collected instead of stopping at the
/// first, each positioned at its node.
struct YAMLFile {
    let path: String
    var diagnostics: [Diagnostic] = []
    /// Warnings and notes: printed, never a reason to refuse the file.
    var notices: [Diagnostic] = []

    init(path: String) {
        self.path = path
    }

    mutating func notice(_ severity: Diagnostic.Severity, _ node: Node?, _ message: String, columnOffset: Int = 0) {
        let mark = node?.mark
        notices.append(Diagnostic(file: path, line: mark?.line ?? 0, column: (mark?.column ?? 0) + columnOffset, message: message, severity: severity))
    }

    mutating func error(_ node: Node?, _ message: String, hint: String? = nil, columnOffset: Int = 0) {
        let mark = node?.mark
        diagnostics.append(Diagnostic(
            file: path, line: mark?.line ?? 0, column: (mark?.column ?? 0) + columnOffset, message: message, hint: hint))
    }

    /// The entries of a mapping, keyed by name; unknown and duplicate keys are reported.
    mutating func mapping(_ node: Node, _ what: String, allowed: [String]) -> [String: Node]? {
        guard case .mapping(let mapping) = node else {
            error(node, "\(what) must be a mapping (key: value lines)", hint: "found \(describe(node))")
            return nil
        }
        var result: [String: Node] = [:]
        for (keyNode, value) in mapping {
            guard let key = keyNode.string else {
                error(keyNode, "\(what) has a key that is not a string")
                continue
            }
            if result[key] != nil {
                error(keyNode, "duplicate key \"\(key)\" in \(what)", hint: "each key may appear once")
                continue
            }
            if !allowed.contains(key) {
                let synonym = DefinitionKeys.synonyms[key].flatMap { allowed.contains($0) ? $0 : nil }
                let hint = (synonym ?? closest(to: key, in: allowed)).map { "did you mean \"\($0)\"?" }
                    ?? "allowed keys: \(allowed.joined(separator: ", "))"
                error(keyNode, "unknown key \"\(key)\" in \(what)", hint: hint)
                continue
            }
            result[key] = value
        }
        return result
    }

    /// A mapping whose keys are free names (env variables, params, labels).
    mutating func entries(_ node: Node, _ what: String) -> [(key: String, keyNode: Node, value: Node)]? {
        guard case .mapping(let mapping) = node else {
            error(node, "\(what) must be a mapping", hint: "found \(describe(node))")
            return nil
        }
        var seen = Set<String>()
        var result: [(String, Node, Node)] = []
        for (keyNode, value) in mapping {
            guard let key = keyNode.string, !key.isEmpty else {
                error(keyNode, "\(what) has an empty or non-string key")
                continue
            }
            guard seen.insert(key).inserted else {
                error(keyNode, "duplicate key \"\(key)\" in \(what)", hint: "each key may appear once")
                continue
            }
            result.append((key, keyNode, value))
        }
        return result
    }

    mutating func sequence(_ node: Node, _ what: String) -> [Node]? {
        guard case .sequence(let sequence) = node else {
            error(node, "\(what) must be a list", hint: "found \(describe(node))")
            return nil
        }
        return Array(sequence)
    }

    /// A scalar as text (numbers and booleans as written).
    mutating func string(_ node: Node, _ what: String) -> String? {
        guard case .scalar(let scalar) = node, node.null == nil || scalar.style != .plain else {
            error(node, "\(what) must be a single value", hint: "found \(describe(node))")
            return nil
        }
        return scalar.string
    }

    mutating func string(_ node: Node?, _ what: String, maxLength: Int) -> String? {
        guard let node, let text = string(node, what) else { return nil }
        if text.count > maxLength {
            error(node, "\(what) is \(text.count) characters long", hint: "at most \(maxLength)")
            return nil
        }
        return text
    }

    /// A name in snake_case or kebab-case.
    mutating func name(_ node: Node, _ what: String) -> String? {
        guard let text = string(node, what) else { return nil }
        guard Self.isName(text) else {
            error(node, "\(what) \"\(text)\" is not a valid name", hint: "use lowercase letters, digits, and _ or - between words (snake_case or kebab-case)")
            return nil
        }
        return text
    }

    /// The `name:` a mapping gives, as written, without a word on whether it is valid: a task or
    /// trigger that has a problem still holds its name, and another with that name is a duplicate.
    static func givenName(_ node: Node) -> String? {
        guard case .mapping(let mapping) = node else { return nil }
        return mapping["name"]?.string
    }

    static func isName(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, first >= UInt8(ascii: "a"), first <= UInt8(ascii: "z"), bytes.count <= 100 else { return false }
        var previousSeparator = false
        for byte in bytes {
            let separator = byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            let letterOrDigit = (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
            guard separator || letterOrDigit, !(separator && previousSeparator) else { return false }
            previousSeparator = separator
        }
        return !previousSeparator
    }

    mutating func bool(_ node: Node, _ what: String) -> Bool? {
        guard case .scalar = node, let value = node.bool else {
            error(node, "\(what) must be true or false", hint: "found \(describe(node))")
            return nil
        }
        return value
    }

    /// `node` as YAML reads a whole number. Plain decimal text (`3`, `-15`), which is what
    /// definitions hold, is read here: Yams reads every number through Foundation's
    /// `replacingOccurrences` (for `1_000`), whose first use costs 300,000 instructions, a
    /// thirtieth of a `belfry validate`. Anything else (`0x1F`, `1_000`, `010`, octal in YAML
    /// 1.1, `1:30`) is Yams's to read.
    static func wholeNumber(_ node: Node) -> Int? { decimal(node) ?? node.int }

    /// Plain decimal text without a leading zero, read; nil for anything else.
    private static func decimal(_ node: Node) -> Int? {
        guard case .scalar(let scalar) = node, scalar.style == .plain || scalar.style == .any else { return nil }
        let text = scalar.string
        var digits = text.utf8[...]
        if let sign = digits.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") { digits = digits.dropFirst() }
        guard text == "0" || digits.first.map({ (49...57).contains($0) }) == true, digits.allSatisfy({ (48...57).contains($0) }) else { return nil }
        return Int(text)
    }

    /// Plain text of digits, signs, a point and an exponent (`0.5`, `1.5e3`), read as Yams would
    /// (its `Double` from the text, once `_` are gone: there are none), without its dear
    /// reading; nil for anything else (`.inf`, `1_000.5`, `1:30.5`).
    private static func plainNumber(_ node: Node) -> Double? {
        guard case .scalar(let scalar) = node, scalar.style == .plain || scalar.style == .any,
            scalar.string.utf8.allSatisfy({ (48...57).contains($0) || "+-.eE".utf8.contains($0) })
        else { return nil }
        return Double(scalar.string)
    }

    mutating func int(_ node: Node, _ what: String, in range: ClosedRange<Int>) -> Int? {
        guard let value = Self.wholeNumber(node) else {
            error(node, "\(what) must be a whole number", hint: "found \(describe(node))")
            return nil
        }
        guard range.contains(value) else {
            error(node, "\(what) is \(value)", hint: "it must be between \(range.lowerBound) and \(range.upperBound)")
            return nil
        }
        return value
    }

    mutating func number(_ node: Node, _ what: String, in range: ClosedRange<Double>) -> Double? {
        guard case .scalar = node, let value = Self.plainNumber(node) ?? node.float ?? node.int.map(Double.init) else {
            error(node, "\(what) must be a number", hint: "found \(describe(node))")
            return nil
        }
        guard range.contains(value) else {
            error(node, "\(what) is \(value)", hint: "it must be between \(range.lowerBound) and \(range.upperBound)")
            return nil
        }
        return value
    }

    /// A duration in milliseconds: a whole number of seconds, or text such as `90s`, `1h30m`.
    mutating func duration(_ node: Node, _ what: String, allowZero: Bool = false) -> Int64? {
        guard case .scalar(let scalar) = node else {
            error(node, "\(what) must be a duration such as 30s, 10m or 1h30m", hint: "found \(describe(node))")
            return nil
        }
        var milliseconds: Int64
        if scalar.style == .plain, let seconds = Self.decimal(node) {
            milliseconds = Int64(seconds) * 1000
        } else {
            do {
                milliseconds = try DurationText.milliseconds(scalar.string, field: what)
            } catch {
                // Another form of whole number (`0x1F`, `1_000`) is seconds too; asked last, as
                // no duration text is one, and Yams' reading is the dear one (`wholeNumber`).
                guard scalar.style == .plain, let seconds = node.int else {
                    self.error(node, "\(what) \"\(scalar.string)\" \(error.problem)")
                    return nil
                }
                milliseconds = Int64(seconds) * 1000
            }
        }
        if milliseconds < 0 {
            error(node, "\(what) must not be negative")
            return nil
        }
        if milliseconds == 0, !allowZero {
            error(node, "\(what) must be more than zero")
            return nil
        }
        return milliseconds
    }

    /// A mapping of names to single values (`env`, `labels`): values as text.
    mutating func stringMap(_ node: Node, _ what: String) -> [String: String] {
        var result: [String: String] = [:]
        for (key, _, value) in entries(node, what) ?? [] {
            if let text = string(value, "\(what).\(key)") { result[key] = text }
        }
        return result
    }

    func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar): node.null != nil && scalar.style == .plain ? "nothing" : "\"\(scalar.string)\""
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }
}
