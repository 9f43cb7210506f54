import BelfryConfig
import BelfrySchedule
import BelfryStore

/// Decides, for the slots of one trigger that came due since its watermark, which run and which
/// are recorded missed (SPEC §4, "Catch-up"): a slot found within `onTime` of its instant runs as
/// scheduled; older ones were missed (the daemon was down, or the wall clock jumped forward) and
/// follow the trigger's `catch_up` policy, bounded by its `starting_deadline`.
public struct CatchUp: Sendable {
    /// How late a slot may be found and still count as on time (a busy machine wakes late).
    public static let onTime: Int64 = 60

    public let policy: CatchUpPolicy
    /// Seconds; nil: no deadline.
    public let startingDeadline: Int64?

    public init(policy: CatchUpPolicy, startingDeadlineMilliseconds: Int64?) {
        self.policy = policy
        self.startingDeadline = startingDeadlineMilliseconds.map { ($0 + 999) / 1000 }
    }

    /// `due`: the slots in (watermark, now], ascending. Returns a decision for each, in order.
    public func decide(_ due: [Instant], now: Instant) -> [(slot: Instant, outcome: SlotOutcome)] {
        let onTimeLimit = min(Self.onTime, startingDeadline ?? Self.onTime)
        var decisions: [(Instant, SlotOutcome)] = []
        // Missed slots that the policy may still run, newest last.
        var candidates: [Instant] = []
        for slot in due {
            let lateness = now.secondsSinceEpoch - slot.secondsSinceEpoch
            if lateness <= onTimeLimit {
                decisions.append((slot, .run(.scheduled)))
            } else if let deadline = startingDeadline, lateness > deadline {
                decisions.append((slot, .notRun(.missed, reason: "past its starting_deadline of \(deadline)s")))
            } else {
                candidates.append(slot)
            }
        }
        // A trigger faster than the on-time window (every 10 s, say) has several on-time slots.
        let onTimeRuns = decisions.count { if case .run = $0.1 { true } else { false } }
        switch policy.mode {
        case .none:
            decisions += candidates.map { ($0, .notRun(.missed, reason: "missed while not running; catch_up is none")) }
        case .latest:
            for (index, slot) in candidates.enumerated() {
                let isLatest = index == candidates.count - 1 && onTimeRuns == 0
                decisions.append((slot, isLatest ? .run(.catchUp) : .notRun(.missed, reason: "superseded by a later slot; catch_up is latest")))
            }
        case .all:
            let keep = max(0, policy.limit - onTimeRuns)  // the limit counts every run of the wake
            for (index, slot) in candidates.enumerated() {
                let runs = index >= candidates.count - keep
                decisions.append((slot, runs ? .run(.catchUp) : .notRun(.missed, reason: "beyond the catch_up limit of \(policy.limit)")))
            }
        }
        return decisions.sorted { $0.0 < $1.0 }
    }
}
