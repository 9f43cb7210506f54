import Foundation
/// A point in absolute time, in whole seconds since 1970-01-01T00:00:00Z (leap seconds ignored, as
/// in POSIX time). Every slot is an `Instant`; wall-clock times only exist relative to a zone.
public struct Instant: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var secondsSinceEpoch: Int64

    public init(secondsSinceEpoch: Int64) {
        self.secondsSinceEpoch = secondsSinceEpoch
    }

    public static func < (a: Instant, b: Instant) -> Bool {
        a.secondsSinceEpoch < b.secondsSinceEpoch
    }

    public static func + (a: Instant, seconds: Int64) -> Instant {
        Instant(secondsSinceEpoch: a.secondsSinceEpoch + seconds)
    }

    public static func - (a: Instant, seconds: Int64) -> Instant {
        Instant(secondsSinceEpoch: a.secondsSinceEpoch - seconds)
    }

    /// RFC 3339 in UTC, e.g. `2026-03-09T06:30:00Z`.
    public var description: String { rfc3339 }

    public var rfc3339: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(20)
        Instant.appendRFC3339(of: secondsSinceEpoch, offset: nil, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `YYYY-MM-DDTHH:MM:SS` followed by `Z` (offset nil) or `±HH:MM` to `bytes`.
    /// `seconds` is on the clock the text shows: UTC seconds with offset nil, local seconds otherwise.
    /// Used to stream a million slots without creating a `String` per line.
    public static func appendRFC3339(of seconds: Int64, offset: Int32?, to bytes: inout [UInt8]) {
        let c = CivilTime.components(seconds)
        appendDigits(Int(c.year), width: 4, to: &bytes)
        bytes.append(UInt8(ascii: "-"))
        appendDigits(c.month, width: 2, to: &bytes)
        bytes.append(UInt8(ascii: "-"))
        appendDigits(c.day, width: 2, to: &bytes)
        bytes.append(UInt8(ascii: "T"))
        appendDigits(c.hour, width: 2, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        appendDigits(c.minute, width: 2, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        appendDigits(c.second, width: 2, to: &bytes)
        guard let offset else {
            bytes.append(UInt8(ascii: "Z"))
            return
        }
        appendOffset(offset, separator: true, to: &bytes)
    }

    /// Appends `±HH:MM` (or `±HH:MM:SS` when the offset has seconds, as some 19th-century zones do).
    static func appendOffset(_ offset: Int32, separator: Bool, to bytes: inout [UInt8]) {
        let magnitude = Int(offset.magnitude)
        bytes.append(UInt8(ascii: offset < 0 ? "-" : "+"))
        appendDigits(magnitude / 3600, width: 2, to: &bytes)
        if separator { bytes.append(UInt8(ascii: ":")) }
        appendDigits(magnitude / 60 % 60, width: 2, to: &bytes)
        if magnitude % 60 != 0 {
            if separator { bytes.append(UInt8(ascii: ":")) }
            appendDigits(magnitude % 60, width: 2, to: &bytes)
        }
    }

    @inline(__always)
    static func appendDigits(_ value: Int, width: Int, to bytes: inout [UInt8]) {
        var divisor = 1
        for _ in 1..<width { divisor *= 10 }
        var v = value
        if v < 0 {
            bytes.append(UInt8(ascii: "-"))
            v = -v
        }
        while divisor > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(v / divisor % 10))
            divisor /= 10
        }
    }
}

extension Instant {
    /// The whole second of a wall-clock date (slots are whole seconds).
    public init(_ date: Date) {
        self.init(secondsSinceEpoch: Int64(date.timeIntervalSince1970.rounded(.down)))
    }

    /// This whole second.
    public static var now: Instant { Instant(Date()) }
}
