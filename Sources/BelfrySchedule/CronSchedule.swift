/// What a cron trigger does with wall-clock times that a DST change skips or repeats.
public struct DSTPolicy: Hashable, Sendable {
    /// A matching time inside a DST gap (the clock jumps over it).
    public enum Skipped: String, Hashable, Sendable, CaseIterable {
        /// Does not fire: `30 2 * * *` has no run on New York's DST-start day.
        case skip
        /// Fires once at the first instant after the gap, however many matching times it held.
        case shift
    }

    /// A matching time that the clock shows twice (the clock is set back over it).
    public enum Repeated: String, Hashable, Sendable, CaseIterable {
        /// Fires at the first occurrence only.
        case once
        /// Fires at both occurrences.
        case twice
    }

    public var skipped: Skipped
    public var repeated: Repeated

    public init(skipped: Skipped = .skip, repeated: Repeated = .once) {
        self.skipped = skipped
        self.repeated = repeated
    }

    /// `skip` and `once`: every wall-clock time fires at most once, and only if it exists.
    public static let `default` = DSTPolicy()
}

/// A cron expression read in a time zone: the slots at which a cron trigger fires.
///
/// The rules (SPEC §1.2): fields match the zone's wall clock. A matching time that does not exist
/// (skipped by a DST jump forward) does not fire, or with `shift` fires at the first instant after
/// the gap. A matching time that occurs twice fires at its first occurrence, or with `twice` at both.
public struct CronSchedule: Sendable {
    public let expression: CronExpression
    public let zone: ZoneRules
    public let dst: DSTPolicy

    public init(expression: CronExpression, zone: ZoneRules, dst: DSTPolicy = .default) {
        self.expression = expression
        self.zone = zone
        self.dst = dst
    }

    /// Parses `expression` and reads it in `zone`, rejecting one that can never fire there.
    /// `hashKey` places `H` items (`ENV.TASK TRIGGER` in a deployment).
    public init(
        parsing expression: String, zone: ZoneRules, dst: DSTPolicy = .default, hashKey: String? = nil
    ) throws(CronError) {
        self.init(expression: try CronExpression(parsing: expression, hashKey: hashKey), zone: zone, dst: dst)
        if nextSlot(after: Instant(secondsSinceEpoch: 946_684_800)) == nil {  // 2000-01-01
            throw CronError(
                field: nil, text: expression,
                problem: "\"\(expression)\" never fires in \(zone.identifier): every matching time falls in a DST gap",
                column: 1)
        }
    }

    /// The first slot strictly after `instant`, or nil if there is none (before the year 9999).
    ///
    /// Walks the zone's segments (spans of one UTC offset) from the one holding `instant`, looking
    /// for the first matching wall-clock time each segment shows. Within a segment, wall-clock time
    /// and UTC move together, so the first match is the earliest slot; crossing into the next
    /// segment either skips a gap or repeats a span of wall-clock time.
    public func nextSlot(after instant: Instant) -> Instant? {
        let t = instant.secondsSinceEpoch
        var segment = zone.segment(containing: t)
        var from = t + Int64(segment.offset) + 1
        if dst.repeated == .once, segment.previousOffset > segment.offset, segment.start != Int64.min {
            // The wall-clock times up to the end of the repeated span were shown once already.
            from = Swift.max(from, segment.start + Int64(segment.previousOffset))
        }
        guard var match = expression.nextMatch(atOrAfter: from) else { return nil }
        let giveUp = from + 401 * 366 * CivilTime.secondsPerDay
        while match < giveUp {
            if segment.end == Int64.max || match < segment.end + Int64(segment.offset) {
                return Instant(secondsSinceEpoch: match - Int64(segment.offset))
            }
            let next = zone.segment(containing: segment.end)
            let nextStart = next.start + Int64(next.offset)  // wall clock right after the change
            if next.offset > segment.offset, match < nextStart {
                // The match falls in the gap: the wall clock never shows it.
                if dst.skipped == .shift { return Instant(secondsSinceEpoch: next.start) }
                guard let later = expression.nextMatch(atOrAfter: nextStart) else { return nil }
                match = later
            } else if next.offset < segment.offset, dst.repeated == .twice {
                // The wall clock goes back: look again at the times it shows a second time.
                guard let again = expression.nextMatch(atOrAfter: nextStart) else { return nil }
                match = again
            }
            segment = next
        }
        return nil
    }

    /// The slots strictly after `instant`, in order: `slots(after: t).prefix(10)`.
    public func slots(after instant: Instant) -> SlotSequence<Self> {
        SlotSequence(schedule: self, after: instant)
    }
}

/// Anything that yields the slot after an instant.
public protocol SlotSchedule: Sendable {
    func nextSlot(after instant: Instant) -> Instant?
}

extension CronSchedule: SlotSchedule {}

/// The slots of a schedule after an instant, lazily.
public struct SlotSequence<Schedule: SlotSchedule>: Sequence, IteratorProtocol, Sendable {
    let schedule: Schedule
    var last: Instant?

    init(schedule: Schedule, after instant: Instant) {
        self.schedule = schedule
        self.last = instant
    }

    public mutating func next() -> Instant? {
        guard let previous = last else { return nil }
        last = schedule.nextSlot(after: previous)
        return last
    }
}
