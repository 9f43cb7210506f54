import Foundation
import Synchronization

/// Why a time zone could not be used.
public enum TimeZoneError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknown(name: String, suggestions: [String])
    case unreadable(name: String, path: String, reason: String)

    public var description: String {
        switch self {
        case .unknown(let name, let suggestions):
            let hint = suggestions.isEmpty ? "" : "; did you mean \(suggestions.joined(separator: ", "))?"
            return "unknown time zone \"\(name)\"\(hint) (IANA names such as America/New_York or UTC)"
        case .unreadable(let name, let path, let reason):
            return "time zone \"\(name)\": cannot read \(path): \(reason)"
        }
    }
}

/// The operating system's compiled tz database (`$TZDIR`, default `/usr/share/zoneinfo`), so that
/// operators get tzdata fixes from their OS updates, as cron and systemd do. Zones with no file
/// there fall back to Foundation's bundled database. Loaded zones are cached.
public final class TimeZoneDatabase: Sendable {
    /// The database of this machine.
    public static let system = TimeZoneDatabase(
        directory: getenv("TZDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/usr/share/zoneinfo")

    public let directory: String
    private let cache = Mutex<[String: ZoneRules]>([:])

    public init(directory: String) {
        self.directory = directory
    }

    /// The rules of the zone named `name` (an IANA name such as `Europe/Berlin`, or `UTC`).
    public func rules(for name: String) throws(TimeZoneError) -> ZoneRules {
        if let cached = cache.withLock({ $0[name] }) { return cached }
        let rules = try load(name)
        cache.withLock { $0[name] = rules }
        return rules
    }

    private func load(_ name: String) throws(TimeZoneError) -> ZoneRules {
        guard Self.isPlausibleName(name) else {
            throw .unknown(name: name, suggestions: suggestions(for: name))
        }
        let path = directory + "/" + name
        if let data = FileManager.default.contents(atPath: path) {
            do {
                return try TZif.rules(identifier: name, bytes: [UInt8](data))
            } catch {
                throw .unreadable(name: name, path: path, reason: error.description)
            }
        }
        if let zone = TimeZone(identifier: name) {
            return Self.rules(from: zone, identifier: name)
        }
        throw .unknown(name: name, suggestions: suggestions(for: name))
    }

    /// Names are relative paths of letters, digits, `_`, `-`, `+` and `/`: nothing that could leave
    /// the database directory.
    private static func isPlausibleName(_ name: String) -> Bool {
        !name.isEmpty && !name.hasPrefix("/") && !name.contains("..") && !name.contains("//")
            && name.utf8.allSatisfy { byte in
                (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || "_-+/".utf8.contains(byte)
            }
    }

    /// Every zone name in the database (files and links with TZif content, without the `posix/`
    /// and `right/` copies), sorted.
    public func identifiers() -> [String] {
        let root = URL(fileURLWithPath: directory)
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isDirectoryKey])
        else { return TimeZone.knownTimeZoneIdentifiers.sorted() }
        var names: [String] = []
        let prefix = root.standardizedFileURL.path + "/"
        for case let url as URL in walker {
            let path = url.standardizedFileURL.path
            guard path.hasPrefix(prefix) else { continue }
            let name = String(path.dropFirst(prefix.count))
            if name.hasPrefix("posix") || name.hasPrefix("right") {
                walker.skipDescendants()
                continue
            }
            // Links (Asia/Calcutta -> Kolkata) are names too.
            guard (try? url.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == false,
                let handle = FileHandle(forReadingAtPath: path)
            else { continue }
            let magic = handle.readData(ofLength: 4)
            try? handle.close()
            if magic.elementsEqual("TZif".utf8) { names.append(name) }
        }
        return names.isEmpty ? TimeZone.knownTimeZoneIdentifiers.sorted() : names.sorted()
    }

    /// Up to three known names closest to `name`: same city in another case or spelling first, then
    /// by edit distance.
    public func suggestions(for name: String) -> [String] {
        let wanted = Self.normalized(name)
        let wantedCity = Self.normalized(String(name.split(separator: "/").last ?? ""))
        var scored: [(score: Int, name: String)] = []
        for candidate in identifiers() {
            let normalized = Self.normalized(candidate)
            let city = Self.normalized(String(candidate.split(separator: "/").last ?? ""))
            var score = Suggestions.distance(wanted, normalized)
            if normalized == wanted || (!wantedCity.isEmpty && city == wantedCity) { score = 0 }
            score = min(score, Suggestions.distance(wantedCity, city) + 1)
            if score <= max(2, wanted.count / 4) { scored.append((score, candidate)) }
        }
        return scored.sorted { ($0.score, $0.name) < ($1.score, $1.name) }.prefix(3).map(\.name)
    }

    private static func normalized(_ text: String) -> String {
        text.lowercased().replacingOccurrences(of: " ", with: "_")
    }

    /// Rules read from Foundation's bundled database, for a zone with no file: its offset changes
    /// from 1900 to the table horizon, found through Foundation's transition search.
    private static func rules(from zone: TimeZone, identifier: String) -> ZoneRules {
        var date = Date(timeIntervalSince1970: -2_208_988_800)  // 1900-01-01
        let horizon = Date(timeIntervalSince1970: TimeInterval(
            CivilTime.days(year: ZoneRules.tableHorizonYear + 1, month: 1, day: 1) * CivilTime.secondsPerDay))
        let initial = (Int32(zone.secondsFromGMT(for: date)), zone.abbreviation(for: date) ?? "")
        var changes: [(instant: Int64, offset: Int32, abbreviation: String)] = []
        while let next = zone.nextDaylightSavingTimeTransition(after: date), next < horizon {
            changes.append((Int64(next.timeIntervalSince1970), Int32(zone.secondsFromGMT(for: next)),
                            zone.abbreviation(for: next) ?? ""))
            date = next
        }
        return ZoneRules(identifier: identifier, initial: initial, changes: changes, rule: nil)
    }
}
