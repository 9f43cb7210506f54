import BelfrySchedule

/// The note `validate` and `deploy` print for a cron trigger that meets a DST change: what
/// happens then under its policy, the next date, and the policy that would change it.
enum DSTNote {
    static func text(expression: String, zone: String, policy: DSTPolicy, gap: DSTEncounter?, repeated: DSTEncounter?) -> String? {
        var parts: [String] = []
        if let gap {
            let times = gap.count == 1 ? gap.first : "its \(gap.count) times from \(gap.first) to \(gap.last)"
            switch policy.skipped {
            case .skip:
                parts.append(gap.count == 1
                    ? "does not run on DST-start days (next: \(gap.date)); dst: { skipped: shift } runs it at \(gap.resumesAt) instead"
                    : "does not run \(times) on DST-start days (next: \(gap.date)); dst: { skipped: shift } runs them once at \(gap.resumesAt) instead")
            case .shift:
                parts.append("runs at \(gap.resumesAt) instead of \(gap.count == 1 ? gap.first : times) on DST-start days (next: \(gap.date)), "
                    + "as its dst: { skipped: shift } says; skipped: skip would leave \(gap.count == 1 ? "it" : "them") out")
            }
        }
        if let repeated {
            let times = repeated.count == 1 ? repeated.first : "\(repeated.first) to \(repeated.last)"
            switch policy.repeated {
            case .once:
                parts.append("runs \(times) once, at the first occurrence, on DST-end days (next: \(repeated.date)); dst: { repeated: twice } runs both")
            case .twice:
                parts.append("runs \(times) twice on DST-end days (next: \(repeated.date)), as its dst: { repeated: twice } says; repeated: once runs only the first")
            }
        }
        guard !parts.isEmpty else { return nil }
        return "\"\(expression)\" in \(zone) " + parts.joined(separator: "; it also ")
    }
}
