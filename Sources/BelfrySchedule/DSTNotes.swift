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
