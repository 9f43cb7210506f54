/// Why a cron expression was rejected: the field, the offending text, the problem and what is allowed.
///
/// `column` is 1-based within the expression, so a definition-file loader can point at the exact
/// character inside the YAML string.
public struct CronError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Field: String, Sendable, CaseIterable {
        case second, minute, hour
        case dayOfMonth = "day-of-month"
        case month
        case dayOfWeek = "day-of-week"

        /// What the field accepts, as shown in error messages.
        public var allowed: String {
            switch self {
            case .second, .minute: "0-59 or H"
            case .hour: "0-23 or H"
            case .dayOfMonth: "1-31, L, L-n, nW, LW, n-L, H or ?"
            case .month: "1-12, JAN-DEC or H"
            case .dayOfWeek: "0-7 or SUN-SAT (0 and 7 are Sunday), nL, n#k with k 1-5, H or ?"
            }
        }
    }

    /// The field the problem is in; nil when the problem is the expression as a whole.
    public var field: Field?
    /// The offending text: an item, a value, or the whole expression.
    public var text: String
    /// The problem, as a phrase: "is out of range", "never fires", ...
    public var problem: String
    /// 1-based column of `text` within the expression.
    public var column: Int

    public init(field: Field?, text: String, problem: String, column: Int) {
        self.field = field
        self.text = text
        self.problem = problem
        self.column = column
    }

    public var description: String {
        guard let field else { return problem }
        return "\(field.rawValue) field: \"\(text)\" \(problem) (allowed: \(field.allowed))"
    }

    /// The same without what the field allows (for warnings, whose text is allowed).
    public var brief: String {
        guard let field else { return problem }
        return "\(field.rawValue) field: \"\(text)\" \(problem)"
    }
}
