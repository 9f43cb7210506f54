import BelfrySchedule
import BelfryTesting
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// The real `belfry daemon`, killed and restarted.
@Suite("belfry daemon process")
struct DaemonProcessTests {
    static func start(
        _ directory: TemporaryDirectory, log: String, arguments: [String] = [], environment: [String: String] = [:]
    ) throws -> Process {
        let process = Process()
        process.executableURL = BelfryCommand.executable
        process.arguments = ["daemon", "--schedules", directory.path + "/schedules", "--database", directory.path + "/belfry.sqlite"] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: log)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// A test that stops early (a failed `#require`) must not leave its daemon running: SIGTERM,
    /// which takes the jobs' process groups down after the shutdown grace.
    static func stop(_ daemon: Process) {
        guard daemon.isRunning else { return }
        daemon.terminate()
        daemon.waitUntilExit()
    }

    /// A datagram socket bound at `path`, as systemd's notify socket; the caller closes it.
    static func notifySocket(at path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        return fd
    }

    /// The daemon's log once it holds `text` (waiting up to 30 s).
    static func waitForLog(_ log: String, containing text: String) async throws -> String {
        var contents = ""
        for _ in 0..<600 where !contents.contains(text) {
            try await Task.sleep(for: .milliseconds(50))
            contents = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        }
        return contents
    }

    /// Polls `belfry runs --json` for up to 60 s until a run matches; returns it, or records an
    /// issue with the daemon's log and returns nil. It looks once more after the deadline: on a
    /// 2-core machine the CPU-bound tests running beside this one can hold both of Swift's
    /// cooperative threads for half a minute, and this task may wake only after the deadline.
    static func waitForRun(
        _ directory: TemporaryDirectory, log: String, sourceLocation: SourceLocation = #_sourceLocation,
        where matches: ([String: Any]) -> Bool
    ) async throws -> [String: Any]? {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            if let run = try runs(directory).first(where: matches) { return run }
            if ContinuousClock.now >= deadline { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? "(no log)"
        Issue.record("no such run after 60 s; the daemon's log:\n\(text)", sourceLocation: sourceLocation)
        return nil
    }

    static func runs(_ directory: TemporaryDirectory) throws -> [[String: Any]] {
        let list = try BelfryCommand.run("runs", "--json", "--limit", "10000", "--database", directory.path + "/belfry.sqlite")
        return try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]] ?? []
    }

    @Test("kill -9 in the middle of a run: the restart resumes it as an interruption, kills the orphan, runs no slot twice")
    func killNine() async throws {
        let directory = try TemporaryDirectory()
        let marker = directory.path + "/started"
        // The first attempt of a run would take 10 minutes, so that the test sees it running even
        // when it is starved of threads for a while; the resumed one finishes at once. Overlap
        // forbid keeps it to one run in flight.
        try directory.write("schedules/t.yaml", """
            tasks:
              - name: slow
                command: { shell: 'echo $$ >> \(marker); if [ "$BELFRY_ATTEMPT" = 1 ]; then sleep 600; fi' }
                triggers: [{ name: every_2s, every: 2s, overlap: forbid }]
            """)
        let first = try Self.start(directory, log: directory.path + "/first.log")
        defer { Self.stop(first) }
        let runID = try #require(try await Self.waitForRun(directory, log: directory.path + "/first.log") { $0["state"] as? String == "running" }?["id"] as? Int)
        // ... and its process is recorded (the attempt row is committed before the spawn, the pid after).
        for _ in 0..<600 {
            let show = try BelfryCommand.run("runs", "show", String(runID), "--json", "--database", directory.path + "/belfry.sqlite")
            let attempts = (try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])?["attempt_list"] as? [[String: Any]]
            if attempts?.first?["pid"] is Int { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let orphan = try #require(Int32((try String(contentsOfFile: marker, encoding: .utf8)).split(separator: "\n").first ?? ""))
        kill(first.processIdentifier, SIGKILL)
        await first.ended()
        let second = try Self.start(directory, log: directory.path + "/second.log")
        defer { Self.stop(second) }
        let resumed = try await Self.waitForRun(directory, log: directory.path + "/second.log") { $0["id"] as? Int == runID && $0["state"] as? String == "succeeded" }
        second.terminate()
        await second.ended()
        #expect(second.terminationStatus == 0)
        #expect(!isAlive(orphan), "the interrupted attempt's process survived the restart")
        #expect(resumed?["state"] as? String == "succeeded")
        #expect(resumed?["attempts"] as? Int == 2, "one interrupted attempt, one resumed")
        let slots = try Self.runs(directory).compactMap { $0["slot"] as? String }
        #expect(Set(slots).count == slots.count, "a slot ran twice")
        let log = try String(contentsOfFile: directory.path + "/second.log", encoding: .utf8)
        #expect(log.contains("run resumed after an interruption"))
        #expect(log.contains("took down process groups left running by a killed daemon groups=\(orphan)"), "the log does not say the orphan was taken down")
    }

    @Test("SIGTERM past the shutdown grace interrupts the running job; the next start resumes it")
    func gracefulStop() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("schedules/t.yaml", """
            tasks:
              - name: slow
                command: { shell: 'if [ "$BELFRY_ATTEMPT" = 1 ]; then sleep 600; fi' }
                triggers: [{ name: every_2s, every: 2s, overlap: forbid }]
            """)
        let first = try Self.start(directory, log: directory.path + "/first.log", arguments: ["--shutdown-grace", "300ms"])
        defer { Self.stop(first) }
        let runID = try #require(try await Self.waitForRun(directory, log: directory.path + "/first.log") { $0["state"] as? String == "running" }?["id"] as? Int)
        first.terminate()
        await first.ended()
        #expect(first.terminationStatus == 0)
        let stopped = try #require(try Self.runs(directory).first { $0["id"] as? Int == runID })
        #expect(stopped["state"] as? String == "queued")
        #expect((stopped["reason"] as? String)?.hasPrefix("interrupted") == true)
        let second = try Self.start(directory, log: directory.path + "/second.log")
        defer { Self.stop(second) }
        let resumed = try await Self.waitForRun(directory, log: directory.path + "/second.log") { $0["id"] as? Int == runID && $0["state"] as? String == "succeeded" }
        second.terminate()
        await second.ended()
        #expect(resumed?["state"] as? String == "succeeded")
        #expect(resumed?["attempts"] as? Int == 2)
    }

    @Test("under systemd: READY=1 with a STATUS line, then WATCHDOG=1, then STOPPING=1")
    func notify() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("schedules/t.yaml", "tasks:\n  - { name: x, command: [\"/bin/true\"], triggers: [hourly] }\n")
        let socketPath = directory.path + "/notify.sock"
        let fd = Self.notifySocket(at: socketPath)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let process = try Self.start(directory, log: directory.path + "/daemon.log",
                                     environment: ["NOTIFY_SOCKET": socketPath, "WATCHDOG_USEC": "4000000"])
        // Each receive waits up to 10 s: off the cooperative threads.
        func receive() async throws -> String {
            try await offThePool {
                var buffer = [UInt8](repeating: 0, count: 4096)
                let count = recv(fd, &buffer, buffer.count, 0)
                return count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : ""
            }
        }
        let ready = try await receive()
        #expect(ready.hasPrefix("READY=1\nSTATUS=1 active triggers, 0 running, next slot "), "\(ready)")
        #expect(try await receive().hasPrefix("WATCHDOG=1\nSTATUS="))
        process.terminate()
        var stopping = false
        var after: [String] = []
        // Watchdog messages sent before SIGTERM may still be queued ahead of it; none for 10 s ends the wait.
        // One every 2 s: a test process slowed by the others must not let the socket's queue
        // (10 datagrams) fill, or STOPPING=1, sent without waiting as sd_notify does, is lost.
        while !stopping {
            let message = try await receive()
            if message.isEmpty { break }
            after.append(message)
            stopping = message == "STOPPING=1"
        }
        await process.ended()
        #expect(stopping, "after SIGTERM: \(after); the daemon's log: \((try? String(contentsOfFile: directory.path + "/daemon.log", encoding: .utf8)) ?? "")")
    }

    @Test("a notify socket nobody reads does not freeze the daemon: it still stops on SIGTERM")
    func unreadNotifySocket() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("schedules/t.yaml", "tasks:\n  - { name: x, command: [\"/bin/true\"], triggers: [hourly] }\n")
        let socketPath = directory.path + "/notify.sock"
        let fd = Self.notifySocket(at: socketPath)
        defer { close(fd) }
        var size: Int32 = 1  // the kernel's minimum: full after a message or two
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        let process = try Self.start(directory, log: directory.path + "/daemon.log",
                                     environment: ["NOTIFY_SOCKET": socketPath, "WATCHDOG_USEC": "20000"])
        try await Task.sleep(for: .seconds(2))  // a hundred watchdog messages, none read
        process.terminate()
        var stopped = false
        for _ in 0..<300 where !stopped {
            stopped = !process.isRunning
            try await Task.sleep(for: .milliseconds(50))
        }
        if !stopped { kill(process.processIdentifier, SIGKILL) }
        await process.ended()
        #expect(stopped, "the daemon did not stop within 15 s of SIGTERM")
    }

    @Test("chaos: SIGKILL the daemon again and again; every second's slot is a run or a missed record, none twice")
    func chaos() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("schedules/t.yaml", """
            tasks:
              - name: tick
                command: { shell: 'sleep 0.$((RANDOM % 5))' }
                triggers: [{ name: each_second, cron: "* * * * * *" }]
            """)
        for round in 0..<8 {
            let daemon = try Self.start(directory, log: directory.path + "/round-\(round).log")
            try await Task.sleep(for: .milliseconds(Int.random(in: 700...2500)))
            kill(daemon.processIdentifier, SIGKILL)
            await daemon.ended()
        }
        // A last, clean run lets interrupted runs finish.
        let last = try Self.start(directory, log: directory.path + "/last.log")
        try await Task.sleep(for: .seconds(3))
        last.terminate()
        await last.ended()
        let runs = try Self.runs(directory)
        let slots = runs.compactMap { $0["slot"] as? String }.sorted()
        #expect(Set(slots).count == slots.count, "a slot was recorded twice")
        // Every second from the first slot to the last is there.
        let utc = try TimeZoneDatabase.system.rules(for: "UTC")
        let first = try InstantText.parse(try #require(slots.first), zone: utc, field: "t").secondsSinceEpoch
        let lastSlot = try InstantText.parse(try #require(slots.last), zone: utc, field: "t").secondsSinceEpoch
        #expect(slots.count == Int(lastSlot - first + 1), "slots are missing: \(slots.count) for \(lastSlot - first + 1) seconds")
        let states = Set(runs.compactMap { $0["state"] as? String })
        #expect(states.isSubset(of: ["succeeded", "missed", "skipped"]), "\(states)")
    }

    @Test("the log tells the whole story in JSON: a failed attempt, its retry and success; a timeout's SIGTERM, SIGKILL and failure")
    func logStory() async throws {
        let directory = try TemporaryDirectory()
        let marker = directory.path + "/failed-once"
        try directory.write("schedules/s.yaml", """
            environment: { name: s }
            tasks:
              - name: flaky
                command: { shell: 'if [ -f \(marker) ]; then echo ok; else touch \(marker); exit 1; fi' }
                retries: { count: 2, backoff: { initial: 200ms, jitter: 0 } }
                triggers: [{ name: soon, cron: "* * * * * *", overlap: forbid }]
              - name: hang
                command: { shell: 'trap "" TERM; sleep 30' }
                timeout: 1s
                kill_grace: 300ms
                triggers: [{ name: soon, cron: "* * * * * *", overlap: forbid }]
            """)
        let log = directory.path + "/daemon.log"
        let daemon = try Self.start(directory, log: log, arguments: ["--log-format", "json"])
        defer { Self.stop(daemon) }
        let text = try await Self.waitForLog(log, containing: "\"outcome\":\"timed_out\"")
        let lines = text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] }
        func first(_ message: String, _ task: String, _ pairs: [String: String] = [:]) -> [String: String]? {
            lines.first { line in line["message"] == message && line["task"] == task && pairs.allSatisfy { line[$0.key] == $0.value } }
        }
        #expect(first("attempt failed", "s.flaky", ["attempt": "1", "exit_code": "1", "outcome": "failed", "trigger": "soon"])?["level"] == "warning")
        #expect(first("retry scheduled", "s.flaky", ["next_attempt": "2", "of": "3", "in": "0.200s"]) != nil)
        #expect(first("attempt started", "s.flaky", ["attempt": "2", "command": "primary"])?["pid"] != nil)
        #expect(first("attempt ended", "s.flaky", ["attempt": "2", "outcome": "succeeded"])?["level"] == "info")
        #expect(first("attempt timed out: SIGTERM sent to its process group", "s.hang", ["max_runtime": "1.000s", "sigkill_after": "0.300s"]) != nil)
        #expect(first("SIGKILL sent: the process group outlived its grace after SIGTERM", "s.hang") != nil)
        #expect(first("attempt failed", "s.hang", ["outcome": "timed_out", "signal": "SIGKILL (9)"]) != nil, "\(text)")
    }

    @Test("the log says who activated or deactivated a trigger, and what a SIGHUP deployed or why it did not")
    func activationAndHangUpStory() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("schedules/s.yaml", "environment: { name: s }\ntasks:\n  - { name: job, command: [\"/bin/true\"], triggers: [hourly] }\n")
        let log = directory.path + "/daemon.log"
        let daemon = try Self.start(directory, log: log, arguments: ["--log-format", "json"])
        defer { Self.stop(daemon) }
        _ = try await Self.waitForLog(log, containing: "daemon started")
        let database = directory.path + "/belfry.sqlite"
        #expect(try BelfryCommand.run("trigger", "deactivate", "s.job", "hourly", "--database", database, "--by", "alice").status == 0)
        _ = try await Self.waitForLog(log, containing: "\"trigger deactivated\"")
        // A broken file: each problem is logged, and the running schedule is kept.
        try directory.write("schedules/s.yaml", "environment: { name: s }\ntasks:\n  - { name: job, command: [\"/bin/true\"], triggers: [{ name: t, cron: \"61 * * * *\" }] }\n")
        kill(daemon.processIdentifier, SIGHUP)
        _ = try await Self.waitForLog(log, containing: "re-deploy failed")
        try directory.write("schedules/s.yaml", "environment: { name: s }\ntasks:\n  - { name: job, command: [\"/bin/true\"], triggers: [hourly, daily] }\n")
        kill(daemon.processIdentifier, SIGHUP)
        let text = try await Self.waitForLog(log, containing: "\"trigger activated\"")
        let lines = text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] }
        func first(_ message: String, _ pairs: [String: String] = [:]) -> [String: String]? {
            lines.first { line in line["message"] == message && pairs.allSatisfy { line[$0.key] == $0.value } }
        }
        #expect(first("trigger deactivated", ["task": "s.job", "trigger": "hourly", "by": "alice"])?["level"] == "notice", "\(text)")
        #expect(first("problem in the schedules", ["cause": "SIGHUP"])?["problem"]?.contains("s.yaml:3:") == true, "\(text)")
        #expect(first("re-deploy failed; the running schedule is kept")?["level"] == "error")
        #expect(first("schedules deployed", ["cause": "SIGHUP", "added": "1", "added_triggers": "s.job daily"]) != nil, "\(text)")
        #expect(first("trigger activated", ["task": "s.job", "trigger": "daily", "by": "belfry daemon"]) != nil, "\(text)")
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

    @Test("--http: the tokens file is made 0600 with an admin token (not in the log); an activation over HTTP reaches the running schedule; a non-loopback address without TLS is refused")
    func http() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("schedules/t.yaml", """
            tasks:
              - name: tick
                command: ["/bin/true"]
                triggers: [{ name: every_second, every: 1s, auto_activate: false }]
            """)
        let port = Int.random(in: 20_000..<60_000)
        let log = directory.path + "/daemon.log"
        let daemon = try Self.start(directory, log: log, arguments: ["--http", "127.0.0.1:\(port)"])
        defer { Self.stop(daemon) }
        let tokensPath = directory.path + "/http-tokens"
        let text = try await Self.waitForLog(log, containing: "HTTP API listening")
        var status = stat()
        #expect(stat(tokensPath, &status) == 0 && status.st_mode & 0o777 == 0o600)
        let line = try String(contentsOfFile: tokensPath, encoding: .utf8).split(separator: " ")
        let token = String(try #require(line.last)).trimmingCharacters(in: .newlines)
        #expect(line.first == "admin" && !text.contains(token), "the token is in the file, not the log")

        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/api/v1/triggers/t.tick/every_second/activate")!)
        request.httpMethod = "POST"
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        let (_, response) = try await URLSession.shared.data(for: request)
        #expect((response as? HTTPURLResponse)?.statusCode == 200)
        let run = try await Self.waitForRun(directory, log: log) { $0["trigger"] as? String == "every_second" }
        #expect(run != nil, "the activation made over HTTP reached the daemon's schedule")
        // Run now: a run of origin api, started by the daemon.
        var runNow = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/api/v1/tasks/t.tick/runs")!)
        runNow.httpMethod = "POST"
        runNow.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        let (body, created) = try await URLSession.shared.data(for: runNow)
        #expect((created as? HTTPURLResponse)?.statusCode == 202)
        let id = try #require((try JSONSerialization.jsonObject(with: body) as? [String: Int])?["id"])
        let manual = try await Self.waitForRun(directory, log: log) { $0["id"] as? Int == id && $0["state"] as? String == "succeeded" }
        #expect(manual?["origin"] as? String == "api" && manual?["trigger"] is NSNull)
        let shown = try BelfryCommand.run(["trigger", "show", "t.tick", "every_second", "--json", "--database", directory.path + "/belfry.sqlite"])
        #expect(shown.stdout.contains("\"updated_by\": \"admin\""))

        let exposed = try BelfryCommand.run(["daemon", "--schedules", directory.path + "/schedules", "--database", directory.path + "/other.sqlite",
                                             "--http", "0.0.0.0:\(port + 1)"])
        #expect(exposed.status != 0 && exposed.stderr.contains("not a loopback address"))
    }

    @Test("--http over TLS: a non-loopback address with a certificate serves HTTPS only, and the session cookie is Secure",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") && FileManager.default.isExecutableFile(atPath: "/usr/bin/curl")))
    func httpTLS() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("schedules/t.yaml", "tasks:\n  - { name: tick, command: [\"/bin/true\"] }\n")
        let key = directory.path + "/key.pem", certificate = directory.path + "/cert.pem"
        #expect(try Browser.run(["/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate,
                                 "-days", "1", "-subj", "/CN=localhost"]).status == 0)
        let port = Int.random(in: 20_000..<60_000)
        let log = directory.path + "/daemon.log"
        let daemon = try Self.start(directory, log: log, arguments: ["--http", "0.0.0.0:\(port)", "--http-tls-cert", certificate, "--http-tls-key", key])
        defer { Self.stop(daemon) }
        #expect(try await Self.waitForLog(log, containing: "HTTP API listening").contains("tls=true"))
        let secure = try Browser.run(["/usr/bin/curl", "-sk", "https://127.0.0.1:\(port)/healthz"])
        #expect(secure.output.contains("\"ok\""))
        let plain = try Browser.run(["/usr/bin/curl", "-s", "http://127.0.0.1:\(port)/healthz"])
        #expect(plain.status != 0, "no answer in clear text")
        let token = String(try String(contentsOfFile: directory.path + "/http-tokens", encoding: .utf8).split(separator: " ").last!)
            .trimmingCharacters(in: .newlines)
        let login = try Browser.run(["/usr/bin/curl", "-sk", "-i", "-X", "POST", "https://127.0.0.1:\(port)/login", "-d", "token=\(token)"])
        #expect(login.output.contains("HttpOnly; SameSite=Strict; Secure"))
    }
}
