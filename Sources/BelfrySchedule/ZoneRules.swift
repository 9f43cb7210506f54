/// The UTC offsets of one IANA time zone over all time: a table of transitions, then the zone's
/// POSIX rule for instants past the table.
///
/// A zone is a sequence of *segments*: spans of UTC time with one offset. Where the offset grows
/// (DST starts) the wall clock skips a gap; where it shrinks (DST ends) the wall clock repeats a
/// span. `CronSchedule` walks these segments; nothing here knows about cron.
public struct ZoneRules: Sendable {
    /// The IANA name, e.g. `America/New_York`.
    public let identifier: String
    /// UTC instants at which the offset or the abbreviation changes, ascending.
    let transitions: [Int64]
    /// `offsets[0]` holds before `transitions[0]`; `offsets[i + 1]` from `transitions[i]` on.
    let offsets: [Int32]
    /// Abbreviations, parallel to `offsets`.
    let abbreviations: [String]
    /// Holds from `transitions.last` on, when it has daylight time.
    let rule: PosixTimeZoneRule?
    /// Where `rule` takes over from the table (Int64.max: never). Kept apart from `rule` so the hot
    /// path compares two integers instead of copying an optional struct of strings.
    let ruleStart: Int64

    /// The table is extended from the rule up to this year, so that common instants are a binary
    /// search away; later instants are computed from the rule year by year.
    static let tableHorizonYear: Int64 = 2100

    /// Builds the rules from a table of (instant, offset, abbreviation) changes and an initial
    /// offset, extending the table from `rule` up to `tableHorizonYear`.
    init(
        identifier: String, initial: (offset: Int32, abbreviation: String),
        changes: [(instant: Int64, offset: Int32, abbreviation: String)], rule: PosixTimeZoneRule?
    ) {
        var transitions: [Int64] = []
        var offsets = [initial.offset]
        var abbreviations = [initial.abbreviation]
        func append(_ instant: Int64, _ offset: Int32, _ abbreviation: String) {
            if let last = transitions.last, instant <= last { return }
            if offset == offsets.last!, abbreviation == abbreviations.last! { return }
            transitions.append(instant)
            offsets.append(offset)
            abbreviations.append(abbreviation)
        }
        for change in changes { append(change.instant, change.offset, change.abbreviation) }
        let dstRule = rule?.hasDaylightTime == true ? rule : nil
        if let dstRule {
            let firstYear = transitions.last.map { CivilTime.components($0).year } ?? 1970
            for year in firstYear...Swift.max(firstYear, Self.tableHorizonYear) {
                for change in dstRule.changes(inYear: year) { append(change.instant, change.offset, change.name) }
            }
        }
        self.identifier = identifier
        self.transitions = transitions
        self.offsets = offsets
        self.abbreviations = abbreviations
        self.rule = transitions.isEmpty ? nil : dstRule
        self.ruleStart = self.rule == nil ? Int64.max : transitions[transitions.count - 1]
    }

    /// A span of UTC time `[start, end)` with one offset, and the offsets around it.
    struct Segment {
        var start: Int64  // Int64.min: since the beginning of time
        var end: Int64  // Int64.max: forever
        var offset: Int32
        var previousOffset: Int32
    }

    /// The segment that contains the UTC instant `instant`.
    @inline(__always)
    func segment(containing instant: Int64) -> Segment {
        if instant >= ruleStart {
            return ruleSegment(containing: instant)
        }
        let low = tableIndex(instant)
        return Segment(
            start: low == 0 ? Int64.min : transitions[low - 1],
            end: low == transitions.count ? Int64.max : transitions[low],
            offset: offsets[low],
            previousOffset: offsets[low == 0 ? 0 : low - 1])
    }

    /// The number of table transitions at or before `instant`: the index into `offsets`.
    @inline(__always)
    private func tableIndex(_ instant: Int64) -> Int {
        var low = 0
        var high = transitions.count
        while low < high {
            let mid = (low + high) >> 1
            if transitions[mid] <= instant { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// A segment past the table, from the zone's POSIX rule: the two changes of the instant's
    /// year, and one of the year before or after, computed without allocating (this runs for
    /// every slot past 2100). The rule alternates between two offsets, so the offset before a
    /// segment is the other one.
    private func ruleSegment(containing instant: Int64) -> Segment {
        let rule = rule.unsafelyUnwrapped
        let year = CivilTime.components(instant + Int64(rule.standardOffset)).year
        let (first, second) = rule.offsetChanges(inYear: year)
        let segment: (start: Int64, end: Int64, offset: Int32)
        if instant < first.instant {
            segment = (rule.offsetChanges(inYear: year - 1).1.instant, first.instant, second.offset)
        } else if instant < second.instant {
            segment = (first.instant, second.instant, first.offset)
        } else {
            segment = (second.instant, rule.offsetChanges(inYear: year + 1).0.instant, second.offset)
        }
        let other = segment.offset == rule.daylightOffset ? rule.standardOffset : rule.daylightOffset
        return Segment(start: segment.start, end: segment.end, offset: segment.offset, previousOffset: other)
    }

    /// Seconds east of UTC in effect at `instant`.
    public func offset(at instant: Instant) -> Int32 {
        segment(containing: instant.secondsSinceEpoch).offset
    }

    /// The zone's abbreviation at `instant` (`EDT`, `+0545`, ...).
    public func abbreviation(at instant: Instant) -> String {
        let u = instant.secondsSinceEpoch
        if u >= ruleStart, let rule {
            let segment = ruleSegment(containing: u)
            return segment.offset == rule.daylightOffset && segment.offset != rule.standardOffset
                ? rule.daylightName ?? rule.standardName : rule.standardName
        }
        return abbreviations[tableIndex(u)]
    }

    /// The UTC instants at which the offset changes in `[from, to)`, with the offsets on either side.
    public func transitions(from: Instant, to: Instant) -> [(instant: Instant, before: Int32, after: Int32)] {
        var result: [(Instant, Int32, Int32)] = []
        var segment = segment(containing: from.secondsSinceEpoch)
        while segment.end != Int64.max, segment.end < to.secondsSinceEpoch {
            let next = self.segment(containing: segment.end)
            if next.offset != segment.offset {
                result.append((Instant(secondsSinceEpoch: segment.end), segment.offset, next.offset))
            }
            segment = next
        }
        return result
    }

    /// The instant at which the wall clock shows `local` (seconds since 1970-01-01 00:00 on this
    /// zone's wall clock). A time shown twice resolves to its first occurrence; a time inside a DST
    /// gap, which the clock never shows, resolves to the first instant after the gap.
    public func instant(forLocal local: Int64) -> Instant {
        let margin: Int64 = 30 * 3600  // larger than any UTC offset ever used
        var segment = segment(containing: local - margin)
        while true {
            if segment.start != Int64.min, segment.start + Int64(segment.offset) > local {
                return Instant(secondsSinceEpoch: segment.start)  // `local` fell into a gap
            }
            if segment.end == Int64.max || local < segment.end + Int64(segment.offset) {
                return Instant(secondsSinceEpoch: local - Int64(segment.offset))
            }
            segment = self.segment(containing: segment.end)
        }
    }

    /// What the wall clock shows at `instant`, and where that stands relative to a DST change.
    public func wallClock(at instant: Instant) -> WallClockTime {
        let u = instant.secondsSinceEpoch
        let segment = segment(containing: u)
        var marker: WallClockTime.DSTMarker?
        if segment.start != Int64.min, segment.previousOffset > segment.offset,
            u < segment.start + Int64(segment.previousOffset - segment.offset)
        {
            marker = .repeatedSecond
        } else if segment.start == u, segment.previousOffset < segment.offset {
            marker = .afterGap
        } else if segment.end != Int64.max {
            let nextOffset = self.segment(containing: segment.end).offset
            if nextOffset < segment.offset, u >= segment.end - Int64(segment.offset - nextOffset) {
                marker = .repeatedFirst
            }
        }
        return WallClockTime(
            local: u + Int64(segment.offset), offset: segment.offset, abbreviation: abbreviation(at: instant),
            marker: marker)
    }
}

/// A wall-clock reading in some zone.
public struct WallClockTime: Hashable, Sendable {
    /// Where a wall-clock time stands relative to a DST change.
    public enum DSTMarker: String, Hashable, Sendable {
        /// The first instant after a gap (the clock jumped forward to it).
        case afterGap = "after-dst-gap"
        /// The first of two instants with this wall-clock time (before the clock was set back).
        case repeatedFirst = "repeated-first"
        /// The second of two instants with this wall-clock time.
        case repeatedSecond = "repeated-second"
    }

    /// Seconds since 1970-01-01 00:00 on the zone's wall clock.
    public let local: Int64
    /// Seconds east of UTC.
    public let offset: Int32
    public let abbreviation: String
    public let marker: DSTMarker?

    /// `2026-03-08T03:00:00-04:00`.
    public var rfc3339: String {
        var bytes: [UInt8] = []
        Instant.appendRFC3339(of: local, offset: offset, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }
}
