import BelfrySchedule

/// One problem in a definition file, positioned at the offending text.
public struct Diagnostic: Error, Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Errors stop a deploy; warnings (legal but surprising forms) and notes (what a DST change
    /// does to a trigger) are printed and change nothing.
    public enum Severity: String, Hashable, Sendable, Comparable {
        case error, warning, note

        public static func < (a: Severity, b: Severity) -> Bool { a.rawValue < b.rawValue }
    }

    public var severity: Severity = .error
    public var file: String
    /// 1-based; 0 when the problem is the file as a whole.
    public var line: Int
    public var column: Int
    public var message: String
    /// How to fix it, when there is something useful to say.
    public var hint: String?

    public init(file: String, line: Int, column: Int, message: String, hint: String? = nil, severity: Severity = .error) {
        self.severity = severity
        self.file = file
        self.line = line
        self.column = column
        self.message = message
        self.hint = hint
    }

    /// `schedules/reports.yaml:12:7: unknown key "timezon" in trigger; did you mean "timezone"?`
    public var description: String {
        let position = line > 0 ? "\(file):\(line):\(column)" : file
        let label = severity == .error ? "" : "\(severity.rawValue): "
        return "\(position): \(label)\(message)" + (hint.map { "; \($0)" } ?? "")
    }

    public static func < (a: Diagnostic, b: Diagnostic) -> Bool {
        (a.file, a.line, a.column, a.message) < (b.file, b.line, b.column, b.message)
    }
}

/// Everything wrong with a set of definition files, sorted by file and line.
public struct DefinitionErrors: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]

    public init(_ diagnostics: [Diagnostic]) {
        self.diagnostics = diagnostics.sorted()
    }

    /// One line per problem.
    public var description: String {
        diagnostics.map(\.description).joined(separator: "\n")
    }
}

/// The closest of `candidates` to `word`, for "did you mean" hints; nil when none is close.
func closest(to word: String, in candidates: [String]) -> String? {
    Suggestions.nearest(to: word, in: candidates, limit: 1).first
}
