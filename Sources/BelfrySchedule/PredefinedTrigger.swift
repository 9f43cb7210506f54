/// The predefined triggers of SPEC §1.4: cron triggers named after themselves.
public enum PredefinedTrigger: String, CaseIterable, Sendable {
    case minutely, hourly, daily, weekly, monthly

    /// The cron expression the trigger stands for.
    public var expression: String {
        switch self {
        case .minutely: "* * * * *"
        case .hourly: "0 * * * *"
        case .daily: "0 0 * * *"
        case .weekly: "0 0 * * 0"
        case .monthly: "0 0 1 * *"
        }
    }
}
