import BelfryTesting
import Foundation
import Testing

/// `belfry run`, `runs`, `logs`, `stats` and `step` as a user runs them.
@Suite("belfry run and history commands")
struct RunCommandTests {
    /// A database with the tasks of `yaml` deployed.
    static func deployed(_ yaml: String) throws -> (directory: TemporaryDirectory, database: String) {
        let directory = try TemporaryDirectory()
        try directory.write("schedules/t.yaml", "tasks:\n" + yaml)
        let database = directory.path + "/belfry.sqlite"
        let deploy = try BelfryCommand.run("deploy", directory.path + "/schedules", "--database", database)
        #expect(deploy.status == 0, "\(deploy.stderr)")
        return (directory, database)
    }

    static func json(_ text: String) throws -> Any { try JSONSerialization.jsonObject(with: Data(text.utf8)) }

    @Test("the exit status mirrors the run; output goes to the terminal and the log; runs --json has SPEC's fields")
    func exitStatus() throws {
        let (directory, database) = try Self.deployed("""
              - { name: ok, command: { shell: "echo hello" } }
              - { name: bad, command: { shell: "echo oops >&2; exit 3" }, retries: { count: 1, backoff: { initial: 0s } } }
              - { name: slow, command: ["/bin/sleep", "5"], timeout: 1s, kill_grace: 200ms }
              - { name: needs, command: ["/bin/echo", "{{day}}"], params: { day: { required: true } } }
            """)
        _ = directory
        let ok = try BelfryCommand.run("run", "t.ok", "--database", database)
        #expect(ok.status == 0 && ok.stdout == "hello\n")
        let bad = try BelfryCommand.run("run", "t.bad", "--database", database)
        #expect(bad.status == 3)
        // The job's stdout and stderr are one stream (as in its log), shown on stdout.
        #expect(bad.stdout == "oops\noops\n")
        #expect(bad.stderr.contains("failed: exit code 3 after 2 attempts"))
        // One summary line, nothing after it (an empty "belfry: " line followed, once).
        #expect(bad.stderr.split(separator: "\n").last?.hasPrefix("belfry: run ") == true, "\(bad.stderr)")
        let slow = try BelfryCommand.run("run", "t.slow", "--database", database)
        #expect(slow.status == 124)
        #expect(!slow.stderr.contains("belfry: \n"), "\(slow.stderr)")
        let needs = try BelfryCommand.run("run", "t.needs", "--input", "day=monday", "--database", database)
        #expect(needs.status == 0 && needs.stdout == "monday\n")
        let missing = try BelfryCommand.run("run", "t.needs", "--database", database)
        #expect(missing.status == 1 && missing.stderr.contains("needs input \"day\""))

        let runs = try #require(try Self.json(BelfryCommand.run("runs", "--json", "--database", database).stdout) as? [[String: Any]])
        #expect(runs.count == 5)
        #expect(runs.first?.keys.sorted() == ["attempts", "command_used", "exit_code", "finished_at", "id", "node", "origin", "queued_at", "reason",
                                              "slot", "started_at", "state", "task", "trigger"])
        #expect(runs.allSatisfy { $0["node"] is NSNull }, "one daemon on SQLite: no node")
        #expect(runs.map { $0["state"] as? String } == ["failed", "succeeded", "timed_out", "failed", "succeeded"])
        let badID = try #require(runs[3]["id"] as? Int)
        let show = try #require(try Self.json(BelfryCommand.run("runs", "show", String(badID), "--json", "--database", database).stdout) as? [String: Any])
        let attempts = try #require(show["attempt_list"] as? [[String: Any]])
        #expect(attempts.map { $0["exit_code"] as? Int } == [3, 3])
        #expect(attempts.first?["output_tail"] as? String == "oops\n")
        let logs = try BelfryCommand.run("logs", String(badID), "--attempt", "1", "--database", database)
        #expect(logs.stdout == "oops\n")
        // t.slow printed nothing: no log file was made, and its log is empty, not an error.
        let slowID = try #require(runs[2]["id"] as? Int)
        let silent = try BelfryCommand.run("logs", String(slowID), "--database", database)
        #expect(silent.status == 0 && silent.stdout.isEmpty, "\(silent.stderr)")
        #expect(try BelfryCommand.run("runs", "show", String(slowID), "--database", database).stdout.contains("log none (nothing printed)"))
        let stats = try #require(try Self.json(BelfryCommand.run("stats", "--json", "--task", "t.bad", "--database", database).stdout) as? [[String: Any]])
        #expect(stats.first?["mean_attempts"] as? Double == 2 && stats.first?["success_rate"] as? Double == 0)
    }

    @Test("Ctrl-C cancels the attempt's whole group and records the run cancelled")
    func interrupt() async throws {
        let (directory, database) = try Self.deployed("""
              - { name: long, command: { shell: "sleep 60 & echo $! > CHILD; wait" }, kill_grace: 500ms }
            """.replacingOccurrences(of: "CHILD", with: FileManager.default.temporaryDirectory.path + "/belfry-child-\(getpid())"))
        _ = directory
        let childFile = FileManager.default.temporaryDirectory.path + "/belfry-child-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: childFile) }
        let process = Process()
        process.executableURL = BelfryCommand.executable
        process.arguments = ["run", "t.long", "--database", database]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        var child: Int32?
        for _ in 0..<3000 where child == nil {
            try await Task.sleep(for: .milliseconds(10))
            child = (try? String(contentsOfFile: childFile, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        let pid = try #require(child)
        process.interrupt()
        await process.ended()
        #expect(process.terminationStatus == 130)
        #expect(!isAlive(pid), "the job's child survived Ctrl-C")
        let runs = try #require(try Self.json(BelfryCommand.run("runs", "--json", "--database", database).stdout) as? [[String: Any]])
        #expect(runs.first?["state"] as? String == "cancelled")
    }

    @Test("a step that succeeded is replayed on the next attempt, not run again")
    func stepReplay() throws {
        let scratch = try TemporaryDirectory()
        let belfry = BelfryCommand.executable.path
        let (directory, database) = try Self.deployed("""
              - name: resumable
                command: { shell: '\(belfry) step fetch -- sh -c "echo fetched-$BELFRY_ATTEMPT; echo x >> \(scratch.path)/count"; test -f \(scratch.path)/ok || { touch \(scratch.path)/ok; exit 1; }' }
                retries: { count: 2, backoff: { initial: 0s } }
            """)
        _ = directory
        let run = try BelfryCommand.run("run", "t.resumable", "--database", database)
        #expect(run.status == 0, "\(run.stderr)")
        let lines = run.stdout.split(separator: "\n")
        #expect(lines.filter { $0.hasPrefix("fetched") } == ["fetched-1", "fetched-1"], "the second attempt gets the first attempt's stdout back")
        #expect(lines.contains("belfry step fetch: replayed the result stored by an earlier attempt of run 1"))
        #expect(try String(contentsOfFile: scratch.path + "/count", encoding: .utf8) == "x\n", "the step's command ran once")
        let outside = try BelfryCommand.run(["step", "x", "--", "/bin/echo", "hi"], environment: ["BELFRY_RUN_ID": ""])
        #expect(outside.status == 0 && outside.stdout == "hi\n" && outside.stderr.contains("not inside a Belfry run"))
    }
}
