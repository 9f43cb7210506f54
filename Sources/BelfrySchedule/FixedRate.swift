/// A trigger that fires every `interval` seconds in absolute time (SPEC §1.3): a 60-minute rate
/// stays 60 minutes apart across DST changes.
public struct FixedRate: Hashable, Sendable {
    /// Seconds between slots, at least 1.
    public let interval: Int64
    /// With a start time, slots are `startTime + k·interval` for k ≥ 0; without, they are
    /// anchored at the trigger's activation.
    public let startTime: Instant?

    public init(interval: Int64, startTime: Instant? = nil) throws(ScheduleError) {
        guard interval >= 1 else {
            throw ScheduleError(field: "every", text: "\(interval)", problem: "must be at least 1 second")
        }
        self.interval = interval
        self.startTime = startTime
    }

    /// The first slot strictly after `instant` for a trigger activated at `activation`.
    ///
    /// Without a start time the first slot is one interval after activation (no run at the moment
    /// of activation). With one, a trigger active at `startTime` fires at `startTime`; one activated
    /// later fires first at the next aligned instant after its activation.
    public func nextSlot(after instant: Instant, activatedAt activation: Instant) -> Instant {
        let anchor = startTime ?? activation
        if let startTime, instant < startTime, activation <= startTime { return startTime }
        let after = Swift.max(instant, activation).secondsSinceEpoch - anchor.secondsSinceEpoch
        let k = Swift.max(1, CivilTime.floorDivide(after, interval) + 1)
        return anchor + k * interval
    }

    /// The slots of this rate for a trigger activated at `activation`.
    public func schedule(activatedAt activation: Instant) -> ActivatedFixedRate {
        ActivatedFixedRate(rate: self, activation: activation)
    }
}

/// A fixed rate together with the activation instant it is anchored to.
public struct ActivatedFixedRate: SlotSchedule, Hashable {
    public let rate: FixedRate
    public let activation: Instant

    public func nextSlot(after instant: Instant) -> Instant? {
        rate.nextSlot(after: instant, activatedAt: activation)
    }

    public func slots(after instant: Instant) -> SlotSequence<Self> {
        SlotSequence(schedule: self, after: instant)
    }
}

/// A problem with a schedule value other than the cron expression itself: a duration, an instant,
/// a policy name.
public struct ScheduleError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What the value was for (`every`, `start_time`, `--after`, ...).
    public var field: String
    public var text: String
    public var problem: String

    public init(field: String, text: String, problem: String) {
        self.field = field
        self.text = text
        self.problem = problem
    }

    public var description: String { "\(field): \"\(text)\" \(problem)" }
}
