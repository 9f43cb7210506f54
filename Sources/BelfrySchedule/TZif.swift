/// Reads compiled time-zone files (TZif, RFC 8536), versions 1 to 4, as installed by the operating
/// system's tzdata under `/usr/share/zoneinfo`.
enum TZif {
    struct FormatError: Error, CustomStringConvertible {
        var reason: String
        var description: String { reason }
    }

    /// Parses the bytes of a TZif file into zone rules.
    static func rules(identifier: String, bytes: [UInt8]) throws(FormatError) -> ZoneRules {
        var reader = ByteReader(bytes: bytes)
        let first = try reader.header()
        var header = first
        var timeSize = 4
        if first.version >= 2 {
            // Skip the 32-bit block; the 64-bit block that follows has the full range.
            try reader.skip(first.dataLength(timeSize: 4))
            header = try reader.header()
            timeSize = 8
        }
        var times: [Int64] = []
        for _ in 0..<header.timeCount { times.append(try reader.signed(size: timeSize)) }
        var typeIndices: [Int] = []
        for _ in 0..<header.timeCount { typeIndices.append(Int(try reader.byte())) }
        var types: [(offset: Int32, abbreviationIndex: Int)] = []
        for _ in 0..<header.typeCount {
            let offset = Int32(truncatingIfNeeded: try reader.signed(size: 4))
            _ = try reader.byte()  // isdst: the offset is what matters
            types.append((offset, Int(try reader.byte())))
        }
        let characters = Array(try reader.take(header.characterCount))
        try reader.skip(header.leapCount * (timeSize + 4) + header.standardCount + header.utCount)
        var rule: PosixTimeZoneRule?
        if first.version >= 2, reader.remaining > 2 {
            let footer = String(decoding: reader.rest(), as: UTF8.self)
                .trimmingCharacters(in: "\n")
            if !footer.isEmpty {
                guard let parsed = PosixTimeZoneRule(footer) else {
                    throw FormatError(reason: "unreadable TZ rule \"\(footer)\" at the end of the file")
                }
                rule = parsed
            }
        }
        guard !types.isEmpty else { throw FormatError(reason: "no local time types") }
        func abbreviation(_ type: Int) -> String {
            let start = types[type].abbreviationIndex
            guard start < characters.count else { return "" }
            let end = characters[start...].firstIndex(of: 0) ?? characters.count
            return String(decoding: characters[start..<end], as: UTF8.self)
        }
        var changes: [(instant: Int64, offset: Int32, abbreviation: String)] = []
        for (time, type) in zip(times, typeIndices) {
            guard type < types.count else { throw FormatError(reason: "transition to an unknown local time type") }
            changes.append((time, types[type].offset, abbreviation(type)))
        }
        return ZoneRules(
            identifier: identifier, initial: (types[0].offset, abbreviation(0)), changes: changes, rule: rule)
    }
}

private struct ByteReader {
    let bytes: [UInt8]
    var index = 0

    struct Header {
        var version: Int
        var utCount, standardCount, leapCount, timeCount, typeCount, characterCount: Int

        func dataLength(timeSize: Int) -> Int {
            timeCount * timeSize + timeCount + typeCount * 6 + characterCount + leapCount * (timeSize + 4)
                + standardCount + utCount
        }
    }

    var remaining: Int { bytes.count - index }

    mutating func header() throws(TZif.FormatError) -> Header {
        guard remaining >= 44, bytes[index..<index + 4].elementsEqual("TZif".utf8) else {
            throw TZif.FormatError(reason: "not a TZif file (no TZif magic)")
        }
        let versionByte = bytes[index + 4]
        let version = versionByte == 0 ? 1 : Int(versionByte) - Int(UInt8(ascii: "0"))
        index += 20
        var counts: [Int] = []
        for _ in 0..<6 { counts.append(Int(try signed(size: 4))) }
        guard counts.allSatisfy({ $0 >= 0 }) else { throw TZif.FormatError(reason: "negative count in header") }
        return Header(
            version: version, utCount: counts[0], standardCount: counts[1], leapCount: counts[2],
            timeCount: counts[3], typeCount: counts[4], characterCount: counts[5])
    }

    mutating func byte() throws(TZif.FormatError) -> UInt8 {
        guard index < bytes.count else { throw TZif.FormatError(reason: "file is truncated") }
        index += 1
        return bytes[index - 1]
    }

    /// A big-endian two's-complement integer of 4 or 8 bytes.
    mutating func signed(size: Int) throws(TZif.FormatError) -> Int64 {
        guard remaining >= size else { throw TZif.FormatError(reason: "file is truncated") }
        var value: UInt64 = 0
        for i in 0..<size { value = value << 8 | UInt64(bytes[index + i]) }
        index += size
        if size == 4 { return Int64(Int32(bitPattern: UInt32(value))) }
        return Int64(bitPattern: value)
    }

    mutating func take(_ count: Int) throws(TZif.FormatError) -> ArraySlice<UInt8> {
        guard remaining >= count else { throw TZif.FormatError(reason: "file is truncated") }
        index += count
        return bytes[index - count..<index]
    }

    mutating func skip(_ count: Int) throws(TZif.FormatError) {
        _ = try take(count)
    }

    func rest() -> ArraySlice<UInt8> { bytes[index...] }
}

extension String {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        var result = Substring(self)
        while result.first == set { result.removeFirst() }
        while result.last == set { result.removeLast() }
        return String(result)
    }
}
