@testable import BelfrySchedule
import Foundation
import BelfryTesting
import Testing

@Suite("Time-zone database")
struct ZoneTests {
    /// Every zone the OS ships, read from its TZif file, gives the same UTC offset as Foundation's
    /// own database at every transition either of them knows (and the second before it) and on
    /// the 1st and 15th of every month, 1970-2100.
    ///
    /// Where the two databases hold different data (Debian keeps the pre-2024b `EET` and `WET`,
    /// which tzdata 2024b turned into links, and Foundation has the links), the C library's own
    /// reading of the same file, `TZ=NAME date`, decides: it must agree with ours.
    @Test("the TZif reader agrees with Foundation for every zone, 1970-2100")
    func agreesWithFoundation() async throws {
        let (zones, compared, disagreements) = try await offThePool { try Self.compareWithFoundation(years: 1970...2100) }
        #expect(zones > 300, "the OS tz database looks missing: \(TimeZoneDatabase.system.directory)")
        #expect(disagreements.isEmpty, "\(disagreements.count) zones disagree: \(disagreements.prefix(20).joined(separator: "; "))")
        #expect(compared > 1_000_000)
    }

    /// Past 2100 the table ends and each zone's POSIX rule gives the changes, computed year by
    /// year (`ZoneRules.ruleSegment`).
    @Test("past the table, the zones' POSIX rules agree with Foundation, 2101-2130")
    func rulesAgreeWithFoundation() async throws {
        let (_, compared, disagreements) = try await offThePool { try Self.compareWithFoundation(years: 2101...2130) }
        #expect(disagreements.isEmpty, "\(disagreements.count) zones disagree: \(disagreements.prefix(20).joined(separator: "; "))")
        #expect(compared > 200_000)
    }

    /// Compares every zone's offsets with Foundation's at the transitions either knows in
    /// `years` (and the second before each), and on the 1st and 15th of every month; returns how
    /// how many zones there are, how many instants were compared and where they disagree.
    /// Minutes of work in a debug build: run off the cooperative threads (`offThePool`).
    static func compareWithFoundation(years: ClosedRange<Int64>) throws -> (zones: Int, compared: Int, disagreements: [String]) {
        let database = TimeZoneDatabase.system
        let names = database.identifiers()
        let start = CivilTime.days(year: years.lowerBound, month: 1, day: 1) * 86400
        let end = CivilTime.days(year: years.upperBound + 1, month: 1, day: 1) * 86400
        var compared = 0
        var disagreements: [String] = []
        for name in names {
            guard let foundation = TimeZone(identifier: name) else { continue }
            let rules = try database.rules(for: name)
            var instants = Set<Int64>()
            for change in rules.transitions(from: Instant(secondsSinceEpoch: start), to: Instant(secondsSinceEpoch: end)) {
                instants.insert(change.instant.secondsSinceEpoch)
                instants.insert(change.instant.secondsSinceEpoch - 1)
            }
            var date = Date(timeIntervalSince1970: TimeInterval(start))
            while let next = foundation.nextDaylightSavingTimeTransition(after: date), next.timeIntervalSince1970 < TimeInterval(end) {
                instants.insert(Int64(next.timeIntervalSince1970))
                instants.insert(Int64(next.timeIntervalSince1970) - 1)
                date = next
            }
            for year in years {
                for month in 1...12 {
                    for day in [1, 15] { instants.insert(CivilTime.days(year: year, month: month, day: day) * 86400 + 43200) }
                }
            }
            for instant in instants.sorted() {
                let ours = Int(rules.offset(at: Instant(secondsSinceEpoch: instant)))
                let theirs = foundation.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(instant)))
                compared += 1
                if ours != theirs, Self.cLibraryOffset(zone: name, at: instant) != ours {
                    disagreements.append("\(name) at \(Instant(secondsSinceEpoch: instant)): ours \(ours), Foundation \(theirs)")
                    break
                }
            }
        }
        return (names.count, compared, disagreements)
    }

    /// The offset glibc reads from the same TZif file, through `date`.
    static func cLibraryOffset(zone: String, at instant: Int64) -> Int? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/date")
        process.arguments = ["-d", "@\(instant)", "+%z"]
        process.environment = ["TZ": ":\(zone)"]
        let pipe = Pipe()
        process.standardOutput = pipe
        guard (try? process.run()) != nil else { return nil }
        process.waitUntilExit()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard let value = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return nil }
        let sign = value < 0 ? -1 : 1
        return sign * (abs(value) / 100 * 3600 + abs(value) % 100 * 60)
    }

    @Test("unknown names are errors with the closest valid names")
    func unknownNames() {
        for (name, suggestion) in [("America/New_Yrok", "America/New_York"), ("europe/berlin", "Europe/Berlin"),
                                   ("New_York", "America/New_York"), ("Asia/Calcuta", "Asia/Calcutta")] {
            #expect {
                _ = try TimeZoneDatabase.system.rules(for: name)
            } throws: { error in
                guard case .unknown(let n, let suggestions) = error as? TimeZoneError else { return false }
                return n == name && suggestions.contains(suggestion)
            }
        }
        for name in ["", "../../etc/passwd", "/etc/localtime", "Mars/Olympus_Mons"] {
            #expect(throws: TimeZoneError.self) { try TimeZoneDatabase.system.rules(for: name) }
        }
    }

    @Test("$TZDIR-style directories are honoured, and a zone missing there falls back to Foundation")
    func customDirectory() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("belfry-tz-\(UUID())")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("Test"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // A zone file of our own: Kathmandu's data under another name.
        try FileManager.default.copyItem(
            atPath: "/usr/share/zoneinfo/Asia/Kathmandu", toPath: directory.appendingPathComponent("Test/Zone").path)
        try Data("not a tzif file".utf8).write(to: directory.appendingPathComponent("Test/Broken"))
        let database = TimeZoneDatabase(directory: directory.path)
        #expect(try database.rules(for: "Test/Zone").offset(at: utc("2026-01-01T00:00:00Z")) == 5 * 3600 + 45 * 60)
        #expect(database.identifiers() == ["Test/Zone"])
        #expect {
            _ = try database.rules(for: "Test/Broken")
        } throws: { error in
            guard case .unreadable(_, _, let reason) = error as? TimeZoneError else { return false }
            return reason.contains("TZif")
        }
        // Not in this directory: Foundation's bundled database answers.
        let berlin = try database.rules(for: "Europe/Berlin")
        #expect(berlin.offset(at: utc("2026-07-01T00:00:00Z")) == 7200)
        #expect(berlin.offset(at: utc("2026-01-01T00:00:00Z")) == 3600)
    }

    @Test(
        "POSIX TZ rules",
        arguments: [
            ("EST5EDT,M3.2.0,M11.1.0", -18000, -14400),
            ("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", 37800, 39600),
            ("IST-1GMT0,M10.5.0,M3.5.0/1", 3600, 0),
            ("<-04>4<-03>,M9.1.6/24,M4.1.6/24", -14400, -10800),
            ("<+00>0<+02>-2,M3.5.0/1,M10.5.0/3", 0, 7200),
            ("CST6CDT,J60/2,300", -21600, -18000),
            ("<+0545>-5:45", 20700, 20700),
            ("AAA3BBB,M3.2.0/-1,M11.1.0/167", -10800, -7200),
        ])
    func posixRules(text: String, standard: Int32, daylight: Int32) throws {
        let rule = try #require(PosixTimeZoneRule(text))
        #expect(rule.standardOffset == standard)
        #expect(rule.daylightOffset == daylight)
        if standard != daylight {
            #expect(rule.changes(inYear: 2030).count == 2)
        }
    }

    @Test("malformed POSIX TZ rules are rejected", arguments: ["", "E5", "EST", "EST5EDT,M13.1.0,M11.1.0", "EST5EDT,M3.2.0", "EST5EDT,J0,J365"])
    func badPosixRules(text: String) {
        #expect(PosixTimeZoneRule(text) == nil)
    }

    @Test("the J, zero-based and M day forms land on the right dates")
    func ruleDays() {
        typealias Change = PosixTimeZoneRule.Change
        func date(_ change: Change, _ year: Int64) -> String {
            Instant(secondsSinceEpoch: change.localSeconds(inYear: year)).rfc3339
        }
        #expect(date(Change(day: .julianNoLeap(60), secondOfDay: 0), 2024) == "2024-03-01T00:00:00Z")
        #expect(date(Change(day: .julianNoLeap(59), secondOfDay: 0), 2024) == "2024-02-28T00:00:00Z")
        #expect(date(Change(day: .zeroBased(59), secondOfDay: 0), 2024) == "2024-02-29T00:00:00Z")
        #expect(date(Change(day: .monthWeekDay(month: 3, week: 5, weekday: 0), secondOfDay: 3600), 2026) == "2026-03-29T01:00:00Z")
        #expect(date(Change(day: .monthWeekDay(month: 9, week: 1, weekday: 6), secondOfDay: 86400), 2026) == "2026-09-06T00:00:00Z")
        #expect(date(Change(day: .monthWeekDay(month: 11, week: 1, weekday: 0), secondOfDay: -3600), 2026) == "2026-10-31T23:00:00Z")
    }
}
