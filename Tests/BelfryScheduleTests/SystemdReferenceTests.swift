@testable import BelfrySchedule
import Foundation
import BelfryTesting
import Testing

/// The engine against an independent implementation: systemd's calendar events
/// (`systemd-analyze calendar`), which read wall-clock times in a zone with the same DST rules
/// as SPEC §1.2 by default. Random cron expressions that systemd can express (one of the two day
/// fields `*`, since systemd always requires both) are asked around DST transitions in many zones.
///
/// Where systemd departs from SPEC §1.2, the case is left out, not counted:
/// - asked from *inside* the second pass of a repeated hour, systemd (which keeps no state) reports
///   the second occurrence of a time whose first occurrence has passed; Belfry never fires a
///   wall-clock time twice;
/// - at a fall-back at midnight (America/Havana), systemd resolves the repeated 00:xx to its
///   second occurrence; SPEC says the first;
/// - systemd 252 fails ("Resource deadlock avoided") on gaps at 00:01 (America/St_Johns before 2011).
@Suite("Engine against systemd-analyze calendar")
struct SystemdReferenceTests {
    static let systemdAnalyze = "/usr/bin/systemd-analyze"
    static let weekdayNames = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]

    static func list(_ values: Set<Int>, all: ClosedRange<Int>, names: [String]? = nil) -> String {
        if values == Set(all) { return "*" }
        return values.sorted().map { names?[$0] ?? String(format: "%02d", $0) }.joined(separator: ",")
    }

    /// The next `count` slots systemd computes after `after`, as epoch seconds.
    static func systemdSlots(_ e: ReferenceSearchTests.RandomExpression, zone: String, after: Int64, count: Int) throws -> [Int64] {
        let weekdays = list(e.weekdays, all: 0...6, names: weekdayNames)
        let days = weekdays == "*" ? "" : weekdays + " "
        let spec = "\(days)*-\(list(e.months, all: 1...12))-\(list(e.daysOfMonth, all: 1...31)) "
            + "\(list(e.hours, all: 0...23)):\(list(e.minutes, all: 0...59)):00 \(zone)"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: systemdAnalyze)
        process.arguments = ["calendar", "--iterations=\(count)", "--base-time=@\(after)", spec]
        process.environment = ["TZ": "UTC", "LANG": "C", "SYSTEMD_COLORS": "0"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = Pipe()
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        // Lines like "    Next elapse: Sun 2026-11-01 05:00:00 UTC" and "       Iter. #2: ...".
        return output.split(separator: "\n").compactMap { line -> Int64? in
            guard line.contains("Next elapse:") || line.contains("Iter. #"), line.hasSuffix(" UTC") else { return nil }
            let words = line.split(separator: " ")
            let text = "\(words[words.count - 3])T\(words[words.count - 2])Z"
            return try? InstantText.parse(text, zone: BelfryScheduleTests.zone("UTC"), field: "systemd").secondsSinceEpoch
        }
    }

    @Test(
        "random expressions around DST transitions agree with systemd",
        .enabled(if: FileManager.default.isExecutableFile(atPath: systemdAnalyze), "needs systemd-analyze (Debian package systemd)"))
    func agreesWithSystemd() async throws {
        // Three hundred systemd-analyze processes waited for: off the cooperative threads.
        let disagreements = try await offThePool { try Self.compareWithSystemd(count: 300) }
        #expect(disagreements.isEmpty, "\(disagreements.count) disagree: \(disagreements.prefix(20).joined(separator: "; "))")
    }

    /// The first 5 slots of `count` random expressions, ours against systemd's; returns where
    /// they differ.
    static func compareWithSystemd(count: Int) throws -> [String] {
        var rng = SplitMix64(seed: 7_2026)
        var compared = 0
        var disagreements: [String] = []
        while compared < count {
            var e = ReferenceSearchTests.randomExpression(using: &rng)
            guard e.domStar || e.dowStar, e.seconds == [0] else { continue }
            if e.text.split(separator: " ").count == 6 { e.text = e.text.split(separator: " ").dropFirst().joined(separator: " ") }
            let zoneName = ReferenceSearchTests.zones.randomElement(using: &rng)!
            let zone = try TimeZoneDatabase.system.rules(for: zoneName)
            let year = Int64.random(in: 2000...2037, using: &rng)
            let from = CivilTime.days(year: year, month: 1, day: 1) * 86400
            let changes = zone.transitions(from: Instant(secondsSinceEpoch: from), to: Instant(secondsSinceEpoch: from + 366 * 86400))
            let pivot = changes.randomElement(using: &rng)?.instant.secondsSinceEpoch ?? from + 86400 * 100
            let after = pivot + Int64.random(in: -(30 * 3600)...(6 * 3600), using: &rng)
            if zone.wallClock(at: Instant(secondsSinceEpoch: after)).marker == .repeatedSecond { continue }
            guard let schedule = try? CronSchedule(parsing: e.text, zone: zone) else { continue }
            let ours = schedule.slots(after: Instant(secondsSinceEpoch: after)).prefix(5).map(\.secondsSinceEpoch)
            let theirs = try Self.systemdSlots(e, zone: zoneName, after: after, count: 5)
            if theirs.count < 5 { continue }  // systemd gave up
            if theirs.contains(where: { zone.wallClock(at: Instant(secondsSinceEpoch: $0)).marker == .repeatedSecond }) {
                continue  // systemd chose a second occurrence
            }
            if ours != theirs { disagreements.append("\(e.text) in \(zoneName) after @\(after): ours \(ours), systemd \(theirs)") }
            compared += 1
        }
        return disagreements
    }
}
