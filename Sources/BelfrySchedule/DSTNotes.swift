/// Where a cron schedule meets a DST change: the matching wall-clock times that a change skips
/// (a gap) or shows twice (a repeat), for `validate`'s notes and `belfry next`'s markers.
public struct DSTEncounter: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable {
        /// The clock jumps forward over the matching times.
        case gap
        /// The clock is set back over them: they are shown twice.
        case repeated
    }

    public var kind: Kind
    /// The instant of the change.
    public var change: Instant
    /// The local date of the change (`2027-03-14`).
    public var date: String
    /// The matching wall-clock times inside the skipped or repeated span, as `HH:MM` (or
    /// `HH:MM:SS` when seconds matter): the first, the last, and how many.
    public var first: String
    public var last: String
    public var count: Int
    /// The wall clock right after a gap (`03:00`), where `skipped: shift` runs.
    public var resumesAt: String
}

extension CronSchedule {
    /// The first gap and the first repeat after `instant`, within `years`, that hold a matching
    /// wall-clock time; nil for each the schedule never meets.
    public func dstEncounters(after instant: Instant, years: Int = 10) -> (gap: DSTEncounter?, repeated: DSTEncounter?) {
        let end = Instant(secondsSinceEpoch: instant.secondsSinceEpoch + Int64(years) * 366 * CivilTime.secondsPerDay)
        var gap: DSTEncounter?
        var repeated: DSTEncounter?
        for change in zone.transitions(from: instant, to: end) where (change.after > change.before ? gap : repeated) == nil {
            guard let encounter = encounter(at: change) else { continue }
            if encounter.kind == .gap { gap = encounter } else { repeated = encounter }
            if gap != nil, repeated != nil { break }
        }
        return (gap, repeated)
    }

    /// The matching wall-clock times that the offset change `change` skips or repeats; nil when none.
    public func encounter(at change: (instant: Instant, before: Int32, after: Int32)) -> DSTEncounter? {
        // Wall-clock span [low, high): skipped when the offset grows, shown twice when it shrinks.
        let t = change.instant.secondsSinceEpoch
        let (low, high) = (t + Int64(min(change.before, change.after)), t + Int64(max(change.before, change.after)))
        guard var match = expression.nextMatch(atOrAfter: low), match < high else { return nil }
        let first = match
        var last = match
        var count = 0
        while match < high {
            (last, count) = (match, count + 1)
            guard let next = expression.nextMatch(atOrAfter: match + 1) else { break }
            match = next
        }
        let date = CivilTime.components(low)
        return DSTEncounter(
            kind: change.after > change.before ? .gap : .repeated, change: change.instant,
            date: "\(date.year)-\(Self.twoDigits(date.month))-\(Self.twoDigits(date.day))",
            first: Self.clock(first), last: Self.clock(last), count: count, resumesAt: Self.clock(high))
    }

    private static func twoDigits(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

    /// `02:30`, or `02:30:15` when the second is not 0.
    private static func clock(_ local: Int64) -> String {
        let c = CivilTime.components(local)
        return "\(twoDigits(c.hour)):\(twoDigits(c.minute))" + (c.second == 0 ? "" : ":\(twoDigits(c.second))")
    }
}

/// The slots of a schedule after an instant, each with the first matching time a DST gap took
/// away just before it (`2027-03-14T02:30`), so that a listing can say a day is missing. Gaps
/// are looked for at each change of the zone's offset, not at each slot.
public struct MarkedSlots: Sequence, IteratorProtocol {
    let schedule: any SlotSchedule
    let zone: ZoneRules
    /// The cron schedule whose skipped times are reported (nil: a rate, or `skipped: shift`).
    let gaps: CronSchedule?
    var last: Instant
    var nextChange: Instant?

    public init(_ schedule: any SlotSchedule, zone: ZoneRules, after: Instant) {
        (self.schedule, self.zone, self.last) = (schedule, zone, after)
        gaps = (schedule as? CronSchedule).flatMap { $0.dst.skipped == .skip ? $0 : nil }
        nextChange = gaps == nil ? nil : Self.change(in: zone, after: after)
    }

    /// The next change within a year: a zone with DST changes at least yearly.
    static func change(in zone: ZoneRules, after instant: Instant) -> Instant? {
        zone.transitions(from: instant, to: Instant(secondsSinceEpoch: instant.secondsSinceEpoch + 400 * 86400)).first?.instant
    }

    public mutating func next() -> (slot: Instant, skipped: String?)? {
        guard let slot = schedule.nextSlot(after: last) else { return nil }
        var skipped: String?
        if let cron = gaps, let upcoming = nextChange, upcoming <= slot {
            for passed in zone.transitions(from: last, to: slot) where passed.after > passed.before {
                if let gap = cron.encounter(at: passed) { skipped = "\(gap.date)T\(gap.first)" }
            }
            nextChange = Self.change(in: zone, after: slot)
        }
        last = slot
        return (slot, skipped)
    }
}
