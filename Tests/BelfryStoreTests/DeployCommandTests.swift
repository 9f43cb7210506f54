import BelfryTesting
import Foundation
import Testing

/// `belfry validate`, `deploy` and `trigger` as a user runs them.
@Suite("belfry deploy and trigger commands")
struct DeployCommandTests {
    static let schedulesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("schedules").path

    @Test("the shipped schedules validate and deploy; activation shows in trigger list --json")
    func shippedSchedules() throws {
        let directory = try TemporaryDirectory()
        let database = directory.path + "/belfry.sqlite"
        let validate = try BelfryCommand.run("validate", Self.schedulesDirectory)
        #expect(validate.status == 0, "\(validate.stderr)")
        let deploy = try BelfryCommand.run("deploy", Self.schedulesDirectory, "--database", database, "--owner", "ci")
        #expect(deploy.status == 0, "\(deploy.stderr)")
        #expect(deploy.stdout.contains("0 deleted"))
        let activate = try BelfryCommand.run("trigger", "activate", "heartbeat.touch", "every_10s", "--database", database, "--by", "tester")
        #expect(activate.status == 0, "\(activate.stderr)")
        // A trigger that fires between whole minutes is told with its seconds.
        #expect(activate.stdout.range(of: #"^activated heartbeat.touch every_10s, next slot \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\n$"#, options: .regularExpression) != nil, "\(activate.stdout)")
        let list = try BelfryCommand.run("trigger", "list", "--json", "--database", database)
        let triggers = try #require(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])
        let tenSeconds = try #require(triggers.first { $0["trigger"] as? String == "every_10s" })
        #expect(tenSeconds["active"] as? Bool == true)
        #expect(tenSeconds["updated_by"] as? String == "tester")
        #expect(tenSeconds["owner"] as? String == "ci")
        #expect(tenSeconds["kind"] as? String == "every")
        #expect(tenSeconds["next_slot"] is String)
        #expect(tenSeconds.keys.sorted() == ["active", "kind", "last_run", "next_slot", "owner", "resolved_schedule", "schedule", "task", "timezone", "trigger", "updated_at", "updated_by"])
        let show = try BelfryCommand.run("trigger", "show", "heartbeat.touch", "every_10s", "--database", database)
        let nextSlots = try #require(show.stdout.split(separator: "\n").first { $0.hasPrefix("next slots") })
        #expect(Set(nextSlots.dropFirst("next slots".count).split(separator: ",")).count == 5, "\(nextSlots)")
    }

    @Test("output that cannot be written (a full disk) fails the command; a reader that stops early does not")
    func unwritableOutput() throws {
        let directory = try TemporaryDirectory()
        let database = directory.path + "/belfry.sqlite"
        try directory.write("schedules/ops.yaml", "tasks:\n  - name: hello\n    command: [\"/bin/echo\", \"hello\"]\n")
        #expect(try BelfryCommand.run("deploy", directory.path + "/schedules", "--database", database).status == 0)
        #expect(try BelfryCommand.run("run", "ops.hello", "--database", database).status == 0)
        let toFullDisk = ["/bin/sh", "-c", "exec \"$0\" \"$@\" >/dev/full"]
        for arguments in [
            ["trigger", "list", "--database", database],  // a table
            ["trigger", "list", "--json", "--database", database],  // JSON
            ["next", "* * * * *", "--count", "3"],  // lines
            ["validate", Self.schedulesDirectory],  // a summary line
            ["logs", "1", "--database", database],  // a job's output
        ] {
            let result = try BelfryCommand.run(arguments, launcher: toFullDisk)
            #expect(result.status == 1, "\(arguments): \(result.stderr)")
            #expect(result.stderr == "belfry: cannot write to standard output: No space left on device\n", "\(arguments)")
        }
        // Nor does a standard error that cannot take the message stop the program.
        let errorToFullDisk = try BelfryCommand.run(["logs", "99", "--database", database], launcher: ["/bin/sh", "-c", "exec \"$0\" \"$@\" 2>/dev/full"])
        #expect(errorToFullDisk.status == 2)
        // SIGPIPE ends the command quietly as it ends any other; where it is ignored, the failed
        // write ends it, quietly too, with success. (Whether it is ignored without the trap is
        // inherited from whatever started the tests: a shell cannot undo an ignored signal.)
        for ignored in [false, true] {
            let toHead = ["/bin/bash", "-c", (ignored ? "trap '' PIPE; " : "") + "\"$0\" \"$@\" | head -c 10 >/dev/null; exit ${PIPESTATUS[0]}"]
            for arguments in [["next", "* * * * *", "--count", "200000"], ["next", "* * * * *", "--count", "200000", "--json"]] {
                let result = try BelfryCommand.run(arguments, launcher: toHead)
                #expect(ignored ? result.status == 0 : [0, 128 + SIGPIPE].contains(result.status), "\(arguments): \(result.stderr)")
                #expect(result.stderr.isEmpty, "\(arguments)")
            }
        }
    }

    @Test("runs --limit below 1 is refused, not read as no runs")
    func runsLimit() throws {
        let directory = try TemporaryDirectory()
        let database = directory.path + "/belfry.sqlite"
        for limit in ["0", "-1"] {
            let result = try BelfryCommand.run("runs", "--limit", limit, "--database", database)
            #expect(result.status == 2)
            #expect(result.stderr == "belfry: --limit must be at least 1, not \(limit)\n")
        }
        #expect(try BelfryCommand.run("runs", "--limit", "1", "--database", database).stdout == "no runs\n")
    }

    @Test("a redeploy of unchanged files reads none of them, but a trigger deleted by hand or a changed file is deployed")
    func unchangedFiles() throws {
        let directory = try TemporaryDirectory()
        let database = directory.path + "/belfry.sqlite"
        let file = try directory.write("schedules/ops.yaml", "tasks:\n  - name: job\n    command: [\"/bin/true\"]\n    triggers: [hourly, daily]\n")
        func deploy() throws -> [String: Any] {
            let result = try BelfryCommand.run("deploy", directory.path + "/schedules", "--database", database, "--json")
            #expect(result.status == 0, "\(result.stderr)")
            return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        }
        #expect((try deploy()["added"] as? [String])?.count == 2)
        #expect(try deploy()["unchanged"] as? Int == 2)
        #expect(try BelfryCommand.run("trigger", "delete", "ops.job", "daily", "--database", database).status == 0)
        let restored = try deploy()
        #expect(restored["added"] as? [String] == ["ops.job daily"])
        #expect(restored["unchanged"] as? Int == 1)
        try Data("tasks:\n  - name: job\n    command: [\"/bin/false\"]\n    triggers: [hourly]\n".utf8).write(to: URL(fileURLWithPath: file))
        let changed = try deploy()
        #expect(changed["deleted"] as? [String] == ["ops.job daily"])
        #expect(changed["unchanged"] as? Int == 1)
    }

    @Test("a bad definition directory is rejected whole, and the database is exactly as before")
    func badDeployChangesNothing() throws {
        let directory = try TemporaryDirectory()
        let database = directory.path + "/belfry.sqlite"
        #expect(try BelfryCommand.run("deploy", Self.schedulesDirectory, "--database", database).status == 0)
        let before = try BelfryCommand.run("trigger", "list", "--json", "--database", database).stdout

        let bad = try TemporaryDirectory()
        // One good file that would delete every trigger, and two bad ones.
        try bad.write("good.yaml", "tasks:\n  - name: only\n    command: [\"/bin/true\"]\n    triggers: [daily]\n")
        try bad.write("typo.yaml", "tasks:\n  - name: x\n    command: [\"/bin/true\"]\n    triggers: [{ name: t, cron: \"0 0 * * *\", timezon: UTC }]\n")
        try bad.write("tabs.yaml", "tasks:\n\t- name: y\n")
        let deploy = try BelfryCommand.run("deploy", bad.path, "--database", database)
        #expect(deploy.status == 1)
        #expect(deploy.stdout.isEmpty)
        let lines = deploy.stderr.split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines[0].contains("tabs.yaml:2:1: invalid YAML"))
        #expect(lines[1].contains("typo.yaml:4:46: unknown key \"timezon\" in trigger; did you mean \"timezone\"?"))
        #expect(lines[2] == "belfry: 2 problems in \(bad.path); nothing was changed")
        #expect(try BelfryCommand.run("trigger", "list", "--json", "--database", database).stdout == before)
    }

    @Test("read-only commands work on a database this user may not write; one with an old schema is one clear line")
    func readOnlyDatabase() throws {
        let directory = try TemporaryDirectory()
        let database = directory.path + "/db/belfry.sqlite"
        try directory.write("schedules/ops.yaml", """
            tasks:
              - name: hello
                command: ["/bin/echo", "hi"]
                triggers: [{ name: tenth, cron: "*/10 * * * * *" }, hourly]
            """)
        #expect(try BelfryCommand.run("deploy", directory.path + "/schedules", "--database", database).status == 0)
        #expect(try BelfryCommand.run("run", "ops.hello", "--database", database).status == 0)
        let old = directory.path + "/old/belfry.sqlite"
        try FileManager.default.createDirectory(atPath: directory.path + "/old", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: database, toPath: old)
        let sqlite = Process()
        sqlite.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        sqlite.arguments = [old, "DELETE FROM grdb_migrations WHERE identifier = (SELECT max(identifier) FROM grdb_migrations)"]
        try sqlite.run()
        sqlite.waitUntilExit()
        // Root may write any file: run the commands as nobody then, from a copy of the binary it
        // can reach; anyone else: take the write permissions away.
        var launcher: [String] = []
        var executable = BelfryCommand.executable
        if getuid() == 0 {
            executable = URL(fileURLWithPath: directory.path + "/belfry")
            try FileManager.default.copyItem(at: BelfryCommand.executable, to: executable)
            launcher = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        }
        // The attempt's log, readable as the database is.
        for path in ["/db/logs", "/db/logs/0-999", "/db/logs/0-999/1-attempt-1.log"].map({ directory.path + $0 }) {
            try FileManager.default.setAttributes([.posixPermissions: path.hasSuffix(".log") ? 0o444 : 0o555], ofItemAtPath: path)
        }
        for path in [directory.path, directory.path + "/db", directory.path + "/old"] {
            try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: path)
        }
        for path in [database, old, database + "-wal", database + "-shm"] where FileManager.default.fileExists(atPath: path) {
            try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: path)
        }
        defer {
            for path in [directory.path, directory.path + "/db", directory.path + "/old"] {
                try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
            }
        }
        func run(_ arguments: String...) throws -> BelfryCommand.Result {
            try BelfryCommand.run(arguments, launcher: launcher, executable: executable)
        }
        let runs = try run("runs", "--database", database)
        #expect(runs.status == 0 && runs.stdout.contains("ops.hello"), "\(runs.stderr)")
        let list = try run("trigger", "list", "--database", database)
        #expect(list.status == 0, "\(list.stderr)")
        // A trigger that fires between whole minutes shows seconds; an hourly one does not.
        let rows = list.stdout.split(separator: "\n")
        #expect(rows.first { $0.contains("tenth") }?.contains(#/\d\d:\d\d:\d\d UTC/#) == true, "\(list.stdout)")
        #expect(rows.first { $0.contains("hourly") }?.contains(#/\d\d:\d\d UTC/#) == true)
        #expect(rows.first { $0.contains("hourly") }?.contains(#/\d\d:\d\d:\d\d UTC/#) == false)
        for arguments in [["stats", "--json"], ["runs", "show", "1"], ["logs", "1"], ["trigger", "show", "ops.hello", "hourly"]] {
            let result = try BelfryCommand.run(arguments + ["--database", database], launcher: launcher, executable: executable)
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
        }
        let activate = try run("trigger", "activate", "ops.hello", "hourly", "--database", database)
        #expect(activate.status != 0)
        let outdated = try run("runs", "--database", old)
        #expect(outdated.status != 0)
        #expect(outdated.stderr.split(separator: "\n").count == 1)
        #expect(outdated.stderr.contains("its schema is not this belfry's version"), "\(outdated.stderr)")
    }

    @Test("an unusable database location is one clear line, not a crash")
    func unusableDatabase() throws {
        let result = try BelfryCommand.run("trigger", "list", "--database", "/proc/belfry/db.sqlite")
        #expect(result.status != 0)
        #expect(result.stderr.hasPrefix("belfry: cannot open the database /proc/belfry/db.sqlite: cannot create the directory /proc/belfry"))
        #expect(result.stderr.split(separator: "\n").count == 1)
        let unknown = try BelfryCommand.run("trigger", "activate", "nope.task", "x", "--database", TemporaryDirectory().path + "/db.sqlite")
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("no trigger \"x\" on task \"nope.task\""))
    }

    @Test("two processes toggling triggers while a third deploys never see \"database is locked\"")
    func concurrentWriters() async throws {
        let directory = try TemporaryDirectory()
        let database = directory.path + "/belfry.sqlite"
        #expect(try BelfryCommand.run("deploy", Self.schedulesDirectory, "--database", database).status == 0)
        let rounds = 15
        let failures = try await withThrowingTaskGroup(of: [String].self) { group in
            for trigger in ["every_minute", "every_10s"] {
                group.addTask {
                    var failures: [String] = []
                    for round in 0..<rounds {
                        let verb = round % 2 == 0 ? "deactivate" : "activate"
                        let result = try BelfryCommand.run("trigger", verb, "heartbeat.touch", trigger, "--database", database)
                        if result.status != 0 { failures.append(result.stderr) }
                    }
                    return failures
                }
            }
            group.addTask {
                var failures: [String] = []
                for _ in 0..<rounds {
                    let result = try BelfryCommand.run("deploy", Self.schedulesDirectory, "--database", database)
                    if result.status != 0 { failures.append(result.stderr) }
                }
                return failures
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(failures.isEmpty, "\(failures)")
        // The last round (14) of each toggler deactivates.
        let list = try BelfryCommand.run("trigger", "list", "--json", "--database", database)
        let triggers = try #require(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])
        let states = triggers.filter { $0["task"] as? String == "heartbeat.touch" }.map { $0["active"] as? Bool }
        #expect(states == [false, false])
        #expect(triggers.count == 7)
    }

    @Test("processes opening a new database at the same moment all succeed (WAL switch and first migration)")
    func concurrentFirstOpen() async throws {
        let directory = try TemporaryDirectory()
        var failures: [String] = []
        for round in 0..<10 {
            let database = directory.path + "/\(round)/belfry.sqlite"
            failures += try await withThrowingTaskGroup(of: String?.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        let result = try BelfryCommand.run("runs", "--json", "--database", database)
                        return result.status == 0 ? nil : result.stderr
                    }
                }
                return try await group.reduce(into: []) { if let failure = $1 { $0.append(failure) } }
            }
        }
        #expect(failures.isEmpty, "\(failures)")
    }
}
