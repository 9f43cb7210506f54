import BelfryTesting
import Foundation
import Testing

/// The real `belfry daemon`, killed and restarted.
@Suite("belfry daemon process")
struct DaemonProcessTests {
    static func start(_ directory: TemporaryDirectory, log: String) throws -> Process {
        let process = Process()
        process.executableURL = BelfryCommand.executable
        process.arguments = ["daemon", "--schedules", directory.path + "/schedules", "--database", directory.path + "/belfry.sqlite"]
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: log)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return process
    }

    static func runs(_ directory: TemporaryDirectory) throws -> [[String: Any]] {
        let list = try BelfryCommand.run("runs", "--json", "--limit", "10000", "--database", directory.path + "/belfry.sqlite")
        return try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]] ?? []
    }

    @Test("kill -9 in the middle of a run: the restart resumes it as an interruption, kills the orphan, runs no slot twice")
    func killNine() async throws {
        let directory = try TemporaryDirectory()
        let marker = directory.path + "/started"
        try directory.write("schedules/t.yaml", """
            tasks:
              - name: slow
                command: { shell: 'echo $$ >> \(marker); sleep 2' }
                triggers: [{ name: every_3s, every: 3s }]
            """)
        let first = try Self.start(directory, log: directory.path + "/first.log")
        // Kill it once the attempt is recorded as running (its process started, its pid committed).
        for _ in 0..<3000 {
            if FileManager.default.fileExists(atPath: marker), try Self.runs(directory).last?["state"] as? String == "running" { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        let orphan = try #require(Int32((try String(contentsOfFile: marker, encoding: .utf8)).split(separator: "\n").first ?? ""))
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        let second = try Self.start(directory, log: directory.path + "/second.log")
        try await Task.sleep(for: .seconds(4))
        #expect(!isAlive(orphan), "the interrupted attempt's process survived the restart")
        second.terminate()
        second.waitUntilExit()
        #expect(second.terminationStatus == 0)
        let runs = try Self.runs(directory)
        let slots = runs.compactMap { $0["slot"] as? String }
        #expect(Set(slots).count == slots.count, "a slot ran twice")
        let resumed = try #require(runs.last)  // the first run, interrupted by kill -9
        #expect(resumed["state"] as? String == "succeeded")
        #expect(resumed["attempts"] as? Int == 2)
        let log = try String(contentsOfFile: directory.path + "/second.log", encoding: .utf8)
        #expect(log.contains("run resumed after an interruption"))
    }

    @Test("a second daemon on the same database refuses to start")
    func secondDaemon() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("schedules/t.yaml", "tasks:\n  - { name: x, command: [\"/bin/true\"], triggers: [hourly] }\n")
        let first = try Self.start(directory, log: directory.path + "/first.log")
        defer { first.terminate(); first.waitUntilExit() }
        for _ in 0..<1000 {
            if (try? String(contentsOfFile: directory.path + "/first.log", encoding: .utf8))?.contains("daemon started") == true { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        let second = try BelfryCommand.run("daemon", "--schedules", directory.path + "/schedules", "--database", directory.path + "/belfry.sqlite")
        #expect(second.status != 0)
        #expect(second.stderr.contains("another belfry daemon (pid \(first.processIdentifier)) is running"))
    }
}
