@testable import BelfryConfig
import BelfrySchedule
import Foundation
import Testing

func load(_ files: [String: String]) throws(DefinitionErrors) -> Definitions {
    try DefinitionLoader.load(files: files.sorted { $0.key < $1.key }.map { ($0.key, Array($0.value.utf8)) })
}

/// The diagnostics of a set of files, as `file:line:column: message` lines.
func problems(_ files: [String: String]) -> [String] {
    do {
        _ = try load(files)
        return []
    } catch {
        return error.diagnostics.map(\.description)
    }
}

@Suite("Definition files")
struct DefinitionLoaderTests {
    static let specExample = """
        environment:
          name: reports
          env: { REPORT_BUCKET: /srv/reports }
          queue: reports
        tasks:
          - name: nightly_export
            command: ["/usr/local/bin/export", "--date", "{{date}}"]
            params: { date: { required: true }, format: { default: csv } }
            retries: { count: 3, backoff: { initial: 2s, max: 1m } }
            timeout: { max_runtime: 30m, max_queued_time: 10m }
            triggers:
              - name: nightly
                cron: "30 2 * * *"
                timezone: America/New_York
                inputs: { date: trigger_time }
                catch_up: latest
              - { predefined: hourly, trigger_time_input_key: date }   # named `hourly`
          - name: heartbeat
            command: { shell: "curl -fsS https://example.invalid/ping" }
            triggers:
              - { name: every_5m, every: 5m, auto_activate: false }
              - daily                       # bare predefined trigger
        """

    @Test("SPEC §2's example loads, with defaults and precedence resolved")
    func specExample() throws {
        let definitions = try load(["schedules/reports.yaml": Self.specExample])
        let tasks = definitions.tasks
        #expect(tasks.map(\.fullName) == ["reports.nightly_export", "reports.heartbeat"])
        let export = tasks[0]
        #expect(export.command == .arguments(["/usr/local/bin/export", "--date", "{{date}}"]))
        #expect(export.env == ["REPORT_BUCKET": "/srv/reports"])
        #expect(export.queue == "reports")
        #expect(export.retries.count == 3)
        #expect(export.retries.backoff.initialMilliseconds == 2000)
        #expect(export.retries.backoff.maxMilliseconds == 60_000)
        #expect(export.retries.backoff.multiplier == 2)
        #expect(export.timeout.maxRuntimeMilliseconds == 1_800_000)
        #expect(export.timeout.maxQueuedMilliseconds == 600_000)
        #expect(export.killGraceMilliseconds == 10_000)
        #expect(export.params == [Param(name: "date", required: true, defaultValue: nil), Param(name: "format", required: false, defaultValue: "csv")])
        #expect(export.triggers.map(\.name) == ["nightly", "hourly"])
        #expect(export.triggers[0].schedule == .cron(expression: "30 2 * * *", timezone: "America/New_York", skipped: .skip, repeated: .once))
        #expect(export.triggers[0].inputs == ["date": .triggerTime])
        #expect(export.triggers[1].schedule == .cron(expression: "0 * * * *", timezone: "UTC", skipped: .skip, repeated: .once))
        #expect(export.triggers[1].inputs == ["date": .triggerTime])
        let heartbeat = tasks[1]
        #expect(heartbeat.command == .shell("curl -fsS https://example.invalid/ping"))
        #expect(heartbeat.triggers[0].schedule == .every(intervalSeconds: 300, startTime: nil, timezone: "UTC"))
        #expect(heartbeat.triggers[0].autoActivate == false)
        #expect(heartbeat.triggers[1].name == "daily")
        #expect(heartbeat.triggers[1].inputs == ["trigger_time": .triggerTime])
        #expect(definitions.queues == ["reports": 16, "default": 16])
    }

    @Test("precedence: environment < task < trigger")
    func precedence() throws {
        let definitions = try load(["ops.yaml": """
            environment: { env: { A: env, B: env, C: env }, queue: slow }
            queues: { fast: { concurrency: 4 }, slow: { concurrency: 1 } }
            tasks:
              - name: job
                command: ["/bin/true"]
                env: { B: task, C: task }
                overlap: forbid
                triggers:
                  - { name: t, cron: "0 * * * *", env: { C: trigger }, queue: fast, overlap: replace }
                  - { name: u, every: 1h30m, start_time: "2026-01-01T00:30", timezone: Europe/Berlin }
            """])
        let task = definitions.tasks[0]
        #expect(task.environment == "ops")  // from the file name
        #expect(task.triggers[0].env == ["A": "env", "B": "task", "C": "trigger"])
        #expect(task.triggers[0].queue == "fast")
        #expect(task.triggers[0].overlap == .replace)
        #expect(task.triggers[1].queue == "slow")
        #expect(task.triggers[1].overlap == .forbid)
        #expect(task.triggers[1].schedule == .every(intervalSeconds: 5400, startTime: Instant(secondsSinceEpoch: 1_767_223_800), timezone: "Europe/Berlin"))
        #expect(definitions.queues == ["fast": 4, "slow": 1, "default": 16])
    }

    @Test(
        "bad files: each problem at its file, line and column",
        arguments: [
            ("tasks:\n  - name: a\n    comand: [x]\n    command: [x]\n", "t.yaml:3:5: unknown key \"comand\" in task; did you mean \"command\"?"),
            // A word from another scheduler, not a misspelling: the key that says the same here.
            ("tasks:\n  - name: a\n    command: [x]\n    triggers: [{ name: t, rate: 5m }]\n", "t.yaml:4:27: unknown key \"rate\" in trigger; did you mean \"every\"?"),
            ("tasks:\n  - name: a\n    command: [x]\n    triggers: [{ name: t, cron: \"* * * * *\", tz: UTC }]\n", "t.yaml:4:46: unknown key \"tz\" in trigger; did you mean \"timezone\"?"),
            // At the duplicate, naming the first.
            ("tasks:\n  - name: a\n    command: [x]\n    command: [y]\n", "t.yaml:4:5: duplicate key \"command\" in a mapping (first at 3:5)"),
            ("tasks:\n  - name: a\n    command: [x]\n    triggers:\n      - name: t\n        cron: \"0 * * * *\"\n        # again\n\n        cron: \"5 * * * *\"\n",
             "t.yaml:9:9: duplicate key \"cron\" in a mapping (first at 6:9)"),
            ("tasks:\n  - name: a\n    command: [x]\n    triggers: [{ name: t, cron: \"0 * * * *\", \"cron\": \"1 * * * *\" }]\n",
             "t.yaml:4:46: duplicate key \"cron\" in a mapping (first at 4:27)"),
            ("tasks:\n  - command: [x]\n    name: a\n  - name: b\n    command: [y]\n    name: c\n", "t.yaml:6:5: duplicate key \"name\" in a mapping (first at 4:5)"),
            ("environment:\n\tname: x\ntasks: []\n", "t.yaml:2:1: invalid YAML"),
            ("tasks:\n  - name: a\n    command: [x]\n    triggers: [{ name: t, cron: \"0 0 30 2 *\" }]\n", "t.yaml:4:34: cron: \"0 0 30 2 *\" never fires"),
            ("tasks:\n  - name: a\n    command: [x]\n    triggers: [{ name: t, cron: \"0 0 * * FRY\" }]\n", "t.yaml:4:42: cron: day-of-week field: \"FRY\""),
            ("tasks:\n  - name: a\n    command: [x]\n    triggers: [{ name: t, cron: \"* * * * *\", timezone: Mars/Base }]\n", "t.yaml:4:56: timezone: unknown time zone \"Mars/Base\""),
            ("tasks:\n  - name: a\n    command: [x]\n    timeout: 30x\n", "t.yaml:4:14: timeout \"30x\" is not a duration"),
            ("tasks:\n  - name: a\n    command: [x]\n    kill_grace: -5s\n", "t.yaml:4:17: kill_grace \"-5s\" must not be negative"),
            ("tasks:\n  - name: a\n    command: [x]\n    triggers: [{ name: t, every: 0s }]\n", "t.yaml:4:34: every must be more than zero"),
            ("tasks:\n  - name: a\n    command: [x]\n    retries: many\n", "t.yaml:4:14: retries must be a whole number"),
            ("tasks:\n  - name: a\n    command: [x]\n    params: { d: { required: true } }\n    triggers: [{ name: t, cron: \"* * * * *\" }]\n", "t.yaml:5:16: trigger \"t\" does not give required input \"d\""),
            ("tasks:\n  - name: a\n    command: [x]\n    params: { d: {} }\n    triggers: [{ predefined: daily, trigger_time_input_key: day }]\n", "t.yaml:5:61: trigger_time_input_key \"day\" is not a param"),
            ("tasks:\n  - name: a\n    command: [x]\n    queue: nowhere\n", "t.yaml:4:12: unknown queue \"nowhere\""),
            ("tasks:\n  - name: a\n    command: [x]\n  - name: a\n    command: [y]\n", "t.yaml:4:5: task \"a\" is defined twice"),
            ("tasks:\n  - name: a\n  - name: a\n    command: [y]\n", "t.yaml:3:5: task \"a\" is defined twice"),
            ("tasks:\n  - name: a\n    command: [x]\n    triggers: [daily, daily]\n", "t.yaml:4:23: trigger \"daily\" is defined twice"),
            // A name taken by a trigger with a problem of its own is taken all the same.
            ("tasks:\n  - name: a\n    command: [x]\n    triggers:\n      - { name: t, cron: \"61 * * * *\" }\n      - { name: t, cron: \"0 * * * *\" }\n",
             "t.yaml:6:9: trigger \"t\" is defined twice"),
            ("tasks:\n  - name: a\n    command: [x]\n    triggers:\n      - { name: t, cron: \"0 * * * *\" }\n      - { name: t, cron: \"61 * * * *\" }\n",
             "t.yaml:6:9: trigger \"t\" is defined twice"),
            ("tasks:\n  - name: Bad Name\n    command: [x]\n", "t.yaml:2:11: task name \"Bad Name\" is not a valid name"),
            ("tasks:\n  - name: a\n", "t.yaml:2:11: task \"a\" has no command"),
            ("tasks:\n  - name: a\n    command: [x]\n    triggers: [{ name: t }]\n", "t.yaml:4:16: trigger has no schedule"),
            ("tasks:\n  - name: a\n    command: [x]\n    triggers: [{ name: t, cron: \"* * * * *\", every: 5m }]\n", "t.yaml:4:16: trigger has both cron and every"),
            ("tasks:\n  - name: a\n    command: [x]\n    triggers: [yearly]\n", "t.yaml:4:16: \"yearly\" is not a predefined trigger"),
            ("tasks:\n  - name: a\n    command: [x]\n    overlap: sometimes\n", "t.yaml:4:14: overlap \"sometimes\" is not one of allow, forbid, replace"),
            ("environment: { description: \(String(repeating: "x", count: 300)) }\ntasks: []\n", "t.yaml:1:29: environment description is 300 characters long"),
            ("", "t.yaml:1:1: the file is empty"),
            ("# only a comment\n", "t.yaml:1:1: the file is empty"),
            ("environment: {}\n", "t.yaml:1:1: the file has no tasks:"),
        ])
    func badFiles(text: String, expected: String) {
        let found = problems(["t.yaml": text])
        #expect(found.contains { $0.hasPrefix(expected) }, "got \(found)")
    }

    @Test("every problem of every file is reported at once, sorted by file and line")
    func allAtOnce() {
        let found = problems([
            "b.yaml": "tasks:\n  - name: x\n    command: [x]\n    retries: -1\n    timeout: 5q\n",
            "a.yaml": "tasks:\n  - name: y\n    colour: blue\n    command: [x]\n",
        ])
        #expect(found.count == 3)
        #expect(found.map { String($0.prefix(8)) } == ["a.yaml:3", "b.yaml:4", "b.yaml:5"])
    }

    @Test("a repeated key does not hide the file's other problems")
    func duplicateKeyAndMore() {
        let found = problems([
            "t.yaml": """
                tasks:
                  - name: a
                    command: [x]
                    triggers:
                      - name: t
                        cron: "0 * * * *"
                        cron:
                          - "5 * * * *"
                        # the value above is the repeated entry's; this comment too
                        timezone: Mars/Base
                    colour: blue
                    name: b


                """,
        ])
        #expect(found.map { String($0.prefix(while: { $0 != ";" })) } == [
            "t.yaml:7:9: duplicate key \"cron\" in a mapping (first at 6:9)",
            "t.yaml:10:19: timezone: unknown time zone \"Mars/Base\" (IANA names such as America/New_York or UTC)",
            "t.yaml:11:5: unknown key \"colour\" in task",
            "t.yaml:12:5: duplicate key \"name\" in a mapping (first at 2:5)",
        ], "got \(found)")
    }

    @Test("a file that is not UTF-8 is named with the line of the first bad byte")
    func notUTF8() {
        let bytes = Array("tasks:\n  - name: a\n".utf8) + [0x20, 0x20, 0xE9, 0x0A]
        do {
            _ = try DefinitionLoader.load(files: [("latin1.yaml", bytes)])
            Issue.record("accepted")
        } catch {
            #expect(error.diagnostics.map(\.description) == ["latin1.yaml:3:1: the file is not UTF-8 text; save it as UTF-8"])
        }
    }

    @Test("directories: none, empty, a symlink loop, a huge file")
    func directories() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("belfry-config-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(throws: DefinitionErrors.self) { try DefinitionLoader.load(directory: root) }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        #expect { try DefinitionLoader.load(directory: root) } throws: { error in
            (error as? DefinitionErrors)?.description.contains("no definition files") == true
        }
        try Data("tasks: []\n".utf8).write(to: URL(fileURLWithPath: root + "/ops.yaml"))
        #expect { try DefinitionLoader.load(directory: root + "/ops.yaml") } throws: { error in
            (error as? DefinitionErrors)?.diagnostics.map(\.description) == ["\(root)/ops.yaml: a file, not a directory; give the directory that holds the definition files (\(root))"]
        }
        try FileManager.default.removeItem(atPath: root + "/ops.yaml")
        try FileManager.default.createSymbolicLink(atPath: root + "/loop.yaml", withDestinationPath: root + "/loop.yaml")
        let huge = "tasks:\n" + String(repeating: "# filler line to make the file big\n", count: 600_000)
        try Data(huge.utf8).write(to: URL(fileURLWithPath: root + "/huge.yaml"))
        do {
            _ = try DefinitionLoader.load(directory: root)
            Issue.record("accepted")
        } catch {
            let lines = error.diagnostics.map(\.description)
            #expect(lines.contains { $0.hasSuffix("huge.yaml: is 20 MiB; definition files are limited to 16 MiB; split it into several files") }, "\(lines)")
            #expect(lines.contains { $0.hasSuffix("loop.yaml: is a symbolic link loop") }, "\(lines)")
        }
    }

    @Test("whole numbers read as YAML reads them: decimal text, and hexadecimal, octal, separated and quoted forms")
    func wholeNumbers() throws {
        func task(_ fields: String) -> (task: TaskDefinition?, problems: [String]) {
            let file = "tasks:\n  - { name: t, command: [\"/bin/true\"], \(fields) }\n"
            return (try? load(["t.yaml": file]).tasks[0], problems(["t.yaml": file]))
        }
        let counts = ["3": 3, "+7": 7, "0": 0, "0x1F": 31, "010": 8, "1_0": 10]  // a leading zero is octal in YAML 1.1
        for (text, value) in counts {
            #expect(task("retries: { count: \(text) }").task?.retries.count == value, "count: \(text)")
            #expect(task("timeout: { max_runtime: \(text) }").task?.timeout.maxRuntimeMilliseconds == Int64(value) * 1000 || value == 0,
                    "max_runtime: \(text)")
        }
        for text in ["\"3\"", "3.5", "99999999999999999999"] {
            #expect(task("retries: { count: \(text) }").problems.contains { $0.contains("retries count must be a whole number") }, "count: \(text)")
        }
        #expect(task("retries: { count: -1 }").problems.contains { $0.contains("retries count is -1") })
        let multipliers = ["2": 2.0, "1.5": 1.5, "1.5e1": 15, "010": 10, "1_0.5": 10.5, "0x10": 16]  // "010" is a float first
        for (text, value) in multipliers {
            #expect(task("retries: { count: 1, backoff: { multiplier: \(text) } }").task?.retries.backoff.multiplier == value, "multiplier: \(text)")
        }
        #expect(task("retries: { count: 1, backoff: { jitter: .5 } }").task?.retries.backoff.jitter == 0.5)
        #expect(task("retries: { count: 1, backoff: { multiplier: .inf } }").problems.contains { $0.contains("backoff multiplier is inf") })
        #expect(task("retries: { count: 1, backoff: { multiplier: 1.5.2 } }").problems.contains { $0.contains("must be a number") })
        #expect(task("timeout: { max_runtime: 0 }").problems.contains { $0.contains("more than zero") })
    }
}
