import BelfryTesting
import Foundation
import Testing

/// `belfry next` as a user runs it: the built executable, its stdout, stderr and exit status.
@Suite("belfry next")
struct NextCommandTests {
    static func run(_ arguments: String...) throws -> BelfryCommand.Result {
        try BelfryCommand.run(arguments)
    }

    static func run(_ arguments: [String]) throws -> BelfryCommand.Result {
        try BelfryCommand.run(arguments)
    }

    @Test("each line starts with the UTC instant, then the local time with offset and DST markers")
    func lines() throws {
        let result = try Self.run("next", "30 2 * * *", "--timezone", "America/New_York", "--after", "2026-03-07T00:00:00Z", "--count", "2")
        #expect(result.status == 0)
        #expect(result.stdout == """
            2026-03-07T07:30:00Z  2026-03-07T02:30:00-05:00 EST
            2026-03-09T06:30:00Z  2026-03-09T02:30:00-04:00 EDT  skipped-in-dst-gap=2026-03-08T02:30

            """)
        let fallBack = try Self.run("next", "*/30 * * * *", "--timezone", "America/New_York", "--after", "2026-11-01T05:20:00Z",
                                    "--count", "3", "--dst-repeated", "twice")
        #expect(fallBack.stdout.split(separator: "\n").map { $0.split(separator: " ").last! } == ["repeated-first", "repeated-second", "repeated-second"])
        let spring = try Self.run("next", "0 3 * * *", "--timezone", "America/New_York", "--after", "2026-03-08T00:00:00Z", "--count", "1")
        #expect(spring.stdout.hasSuffix("after-dst-gap\n"))
    }

    @Test("--json prints an array; fixed rates and predefined names work")
    func json() throws {
        let result = try Self.run("next", "--every", "90m", "--start-time", "2026-01-01T00:00:00Z", "--after", "2025-12-31T23:00:00Z", "--count", "2", "--json")
        #expect(result.status == 0)
        let slots = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]]
        #expect(slots?.compactMap { $0["slot"] as? String } == ["2026-01-01T00:00:00Z", "2026-01-01T01:30:00Z"])
        let daily = try Self.run("next", "daily", "--timezone", "Asia/Kathmandu", "--after", "2026-06-01T00:00:00Z", "--count", "1")
        #expect(daily.stdout.hasPrefix("2026-06-01T18:15:00Z  2026-06-02T00:00:00+05:45"))
    }

    @Test(
        "bad input: non-zero exit, one line on stderr naming the problem, nothing on stdout",
        arguments: [
            (["next", "61 * * * *"], "minute field: \"61\" is out of range"),
            (["next", "0 0 30 2 *"], "never fires"),
            (["next", "* * * * *", "--timezone", "America/New_Yrok"], "did you mean America/New_York"),
            (["next", "* * * * *", "--after", "yesterday"], "--after"),
            (["next", "--every", "0s"], "at least 1s"),
            (["next", "--every", "10x"], "not a duration"),
            (["next"], "give a cron expression"),
            (["next", "* * * * *", "--count", "0"], "--count"),
            // A negative number is the option's value, not another option.
            (["next", "* * * * *", "--count", "-5"], "--count must be between 1 and 1000000, not -5"),
            (["next", "* * * * *", "--dst-skipped", "maybe"], "skip or shift"),
            (["next", "* * * * *", "--bogus"], "--bogus"),
        ])
    func badInput(arguments: [String], message: String) throws {
        let result = try Self.run(arguments)
        #expect(result.status != 0)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }

    @Test("a million slots stream out")
    func million() throws {
        let result = try Self.run("next", "* * * * * *", "--after", "2026-01-01T00:00:00Z", "--count", "1000000")
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 1_000_000)
        #expect(lines.last?.hasPrefix("2026-01-12T13:46:40Z") == true)
    }
}

@Suite("belfry --version")
struct VersionTests {
    @Test("one line: the version, the commit it was built from, Swift's and SQLite's versions")
    func version() throws {
        let result = try BelfryCommand.run(["--version"])
        #expect(result.status == 0)
        let pattern = #/belfry \d+\.\d+\.\d+ \(commit ([0-9a-f]{12}|unknown), Swift \d+\.\d+(\.\d+)?, SQLite 3\.\d+\.\d+\)\n/#
        #expect(result.stdout.wholeMatch(of: pattern) != nil, "\(result.stdout)")
    }
}

/// `belfry` serves the light commands itself and hands the rest to `belfry-daemon` beside it.
@Suite("belfry and belfry-daemon")
struct HandOffTests {
    @Test("alone in a directory, belfry still answers next; a command it hands off names the program it needs")
    func withoutTheDaemonProgram() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("belfry-alone-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let alone = directory.appendingPathComponent("belfry")
        try FileManager.default.copyItem(at: BelfryCommand.executable, to: alone)

        let next = try BelfryCommand.run(["next", "0 12 * * *", "--after", "2026-01-01T00:00:00Z", "--count", "1"], executable: alone)
        #expect(next.status == 0)
        #expect(next.stdout.hasPrefix("2026-01-01T12:00:00Z"))

        for arguments in [["daemon"], ["--version"], ["runs", "--database", "postgresql://belfry@127.0.0.1:1/belfry"]] {
            let handedOff = try BelfryCommand.run(arguments, executable: alone)
            #expect(handedOff.status == 127, "\(arguments)")
            #expect(handedOff.stderr.contains("\(directory.path)/belfry-daemon"), "\(handedOff.stderr)")
            #expect(handedOff.stderr.contains("installed beside belfry"), "\(handedOff.stderr)")
        }
    }

    @Test("the help beside belfry-daemon lists every command, the daemon's among them")
    func fullHelp() throws {
        let help = try BelfryCommand.run(["--help"])
        #expect(help.status == 0)
        for command in ["next", "validate", "deploy", "trigger", "runs", "daemon", "run", "step", "http-token"] {
            #expect(help.stdout.contains("\n  \(command) "), "\(command)")
        }
    }
}
