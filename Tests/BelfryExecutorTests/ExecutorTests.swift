import Synchronization
import BelfryConfig
@testable import BelfryExecutor
import BelfryStore
import BelfryTesting
import Foundation
import Testing

/// A task read from YAML, as an operator writes it.
func task(_ yaml: String) throws -> TaskDefinition {
    try DefinitionLoader.load(files: [("t.yaml", Array(("tasks:\n" + yaml).utf8))]).tasks[0]
}

struct Harness {
    let directory: TemporaryDirectory
    let store: BelfryDatabase

    init() throws {
        directory = try TemporaryDirectory()
        store = try BelfryDatabase(path: directory.path + "/belfry.sqlite")
    }

    func executor<C: Clock>(_ clock: C, now: @escaping @Sendable () -> Date = { Date() }) -> RunExecutor<C> where C.Duration == Duration {
        RunExecutor(store: store, clock: clock, now: now, random: { 0.5 }, logDirectory: directory.path + "/logs")
    }

    func details(_ id: Int64) throws -> (run: RunRecord, attempts: [AttemptRecord], steps: [StepRecord]) {
        try #require(try store.run(id: id))
    }
}

/// The executor's events, each as one line of words.
final class EventRecorder: Sendable {
    private let lines = Mutex<[String]>([])

    var all: [String] { lines.withLock { $0 } }

    func record(_ event: ExecutorEvent) {
        let line: String
        switch event {
        case .queueWaitEnded(_, let queue, _): line = "waited \(queue)"
        case .queueTimedOut(_, let queue, _): line = "queue timeout \(queue)"
        case .attemptStarted(_, let attempt, _, let command): line = "start \(attempt) \(command)"
        case .attemptEnded(_, let attempt, let outcome, let code, let signal, _, _):
            line = "end \(attempt) \(outcome)" + (code.map { " code \($0)" } ?? "") + (signal.map { " signal \($0)" } ?? "")
        case .timedOut(_, let attempt, _, let after, let grace): line = "timeout \(attempt) after \(after) grace \(grace)"
        case .killed(_, let attempt, _): line = "sigkill \(attempt)"
        case .retryScheduled(_, let next, let of, let delay): line = "retry \(next)/\(of) in \(delay)"
        case .fallbackStarted(_, let index): line = "fallback \(index)"
        case .onFailureRan(_, let attempt, let code, _): line = "on_failure \(attempt) code \(code.map(String.init) ?? "-")"
        case .circuitChanged(_, let phase, let failures): line = "circuit \(phase) \(failures)"
        case .runEnded(_, let state, _): line = "run \(state.rawValue)"
        }
        lines.withLock { $0.append(line) }
    }
}

func shell(_ script: String, retries: Int = 2, extra: String = "") -> String {
    """
      - name: job
        command: { shell: '\(script)' }
        retries: { count: \(retries), backoff: { initial: 1s, multiplier: 2, max: 1m, jitter: 0 } }
    \(extra)
    """
}

@Suite("Executor")
struct ExecutorTests {
    @Test(
        "exit codes and signals: what each does to retries",
        arguments: [
            ("exit 0", RunState.succeeded, 1), ("exit 1", .failed, 3), ("exit 2", .failed, 3),
            ("exit 64", .failed, 1), ("exit 65", .failed, 1), ("exit 66", .failed, 1), ("exit 67", .failed, 1),
            ("exit 68", .failed, 1), ("exit 69", .failed, 3), ("exit 75", .failed, 3), ("exit 77", .failed, 1),
            ("exit 78", .failed, 1), ("exit 126", .failed, 1), ("exit 127", .failed, 1),
            ("kill -TERM $$", .failed, 3), ("kill -KILL $$", .failed, 3),
        ])
    func exitCodes(script: String, state: RunState, attempts: Int) async throws {
        let harness = try Harness()
        let clock = ImmediateClock()
        let result = try await harness.executor(clock).run(RunRequest(task: task(shell(script)), origin: .manual))
        #expect(result.state == state)
        #expect(result.attempts == attempts)
        let details = try harness.details(result.runID)
        #expect(details.attempts.count == attempts)
        #expect(details.run.state == state)
        #expect(clock.sleeps == Array([Duration.seconds(1), .seconds(2)].prefix(attempts - 1)))
        if script.hasPrefix("kill") {
            #expect(details.attempts.allSatisfy { $0.signal != nil && $0.exitCode == nil })
        }
    }

    @Test("backoff: min(max, initial · multiplier^(k-1)) with ± jitter from the random source")
    func backoffSequence() {
        var policy = BackoffPolicy()
        policy.initialMilliseconds = 1000
        policy.multiplier = 3
        policy.maxMilliseconds = 20_000
        policy.jitter = 0.5
        let randoms = [0.0, 0.5, 1.0, 0.25, 0.75]
        let delays = randoms.enumerated().map { k, r in RunExecutor<ImmediateClock>.backoff(policy, afterAttempt: k + 1, random: r) }
        #expect(delays == [.milliseconds(500), .milliseconds(3000), .milliseconds(13_500), .milliseconds(15_000), .milliseconds(25_000)])
    }

    @Test("a timeout kills the whole group, a grandchild ignoring SIGTERM included")
    func timeoutKillsGroup() async throws {
        let harness = try Harness()
        let clock = ManualClock()
        let pidFile = harness.directory.path + "/grandchild.pid"
        // The grandchild writes its pid once its trap is set: written by the parent (`$!`), the
        // file could appear before the trap, and a loaded machine's SIGTERM then killed it.
        let job = try task(shell("(trap \"\" TERM; sh -c ''echo $PPID'' > \(pidFile); exec sleep 60) & sleep 60", retries: 0,
                                 extra: "    timeout: 10s\n    kill_grace: 300ms"))
        var configured = harness.executor(clock)
        let events = EventRecorder()
        configured.events = events.record
        let executor = configured
        let running = Task { try await executor.run(RunRequest(task: job, origin: .manual)) }
        // Wait for the grandchild to exist, then let virtual time pass the timeout.
        var grandchild: Int32?
        for _ in 0..<3000 where grandchild == nil {
            try await Task.sleep(for: .milliseconds(10))
            grandchild = (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        let pid = try #require(grandchild)
        while clock.sleeperCount == 0 { try await Task.sleep(for: .milliseconds(5)) }
        let deadline = clock.nextDeadline
        clock.advance(by: .seconds(10))
        let result = try await running.value
        #expect(result.state == .timedOut, "the timeout's deadline was \(String(describing: deadline)), the clock at \(clock.now)")
        let attempt = try #require(try harness.details(result.runID).attempts.first)
        #expect(attempt.timedOut)
        #expect(!isAlive(pid), "the grandchild survived its attempt")
        #expect(events.all == ["start 1 primary", "timeout 1 after 10.0 seconds grace 0.3 seconds", "sigkill 1", "end 1 timed_out signal 15",
                               "run timed_out"])
    }

    @Test("what an attempt leaves running in its group is taken down when it ends, SIGTERM ignored or not")
    func leftoversTakenDown() async throws {
        let harness = try Harness()
        let pidFile = harness.directory.path + "/left.pid"
        // Both streams away from the attempt's pipe: nothing but the group ties it to the attempt.
        let job = try task(shell("(trap \"\" TERM; exec sleep 60) >/dev/null 2>&1 & echo $! > \(pidFile); exit 0", retries: 0,
                                 extra: "    kill_grace: 300ms"))
        let result = try await harness.executor(ManualClock()).run(RunRequest(task: job, origin: .manual))
        #expect(result.state == .succeeded)
        let pid = try #require((try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
        #expect(!isAlive(pid), "the attempt's leftover survived it")
    }

    @Test("many attempts ending together: what each left running is taken down, and only that")
    func leftoversOfManyTakenDown() async throws {
        let harness = try Harness()
        let directory = harness.directory.path
        // Runs with an even id leave a process ignoring SIGTERM in their group; the others leave
        // nothing. Their ends are answered together by passes over /proc.
        let job = try task(shell("if [ $((BELFRY_RUN_ID % 2)) -eq 0 ]; then (trap \"\" TERM; exec sleep 60) >/dev/null 2>&1 & echo $! > \(directory)/left.$BELFRY_RUN_ID; fi; exit 0",
                                 retries: 0, extra: "    kill_grace: 300ms"))
        let executor = harness.executor(ManualClock())
        let results = try await withThrowingTaskGroup(of: RunResult.self) { group in
            for _ in 0..<16 { group.addTask { try await executor.run(RunRequest(task: job, origin: .manual)) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.allSatisfy { $0.state == .succeeded })
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix("left.") }
        #expect(leftovers.count == results.filter { $0.runID % 2 == 0 }.count)
        for file in leftovers {
            let pid = try #require((try? String(contentsOfFile: directory + "/" + file, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
            #expect(!isAlive(pid), "\(file): the leftover survived its attempt")
        }
    }

    @Test("output past the cap keeps the beginning and the end; the database keeps the last 4 KiB")
    func outputCap() async throws {
        let harness = try Harness()
        let script = "echo FIRST; head -c 104857600 /dev/zero | tr \"\\\\000\" x; echo; echo LAST"
        let job = try task(shell(script, retries: 0, extra: "    max_output_bytes: 1048576"))
        let result = try await harness.executor(ImmediateClock()).run(RunRequest(task: job, origin: .manual))
        #expect(result.state == .succeeded)
        let attempt = try #require(try harness.details(result.runID).attempts.first)
        let log = try Data(contentsOf: URL(fileURLWithPath: try #require(attempt.logPath)))
        #expect(log.count > 1_048_576 && log.count < 1_048_576 + 200)
        #expect(log.prefix(6) == Data("FIRST\n".utf8))
        #expect(String(decoding: log, as: UTF8.self).contains("bytes of output left out here"))
        #expect(log.suffix(5) == Data("LAST\n".utf8))
        #expect(attempt.outputTail?.count == 4096)
        #expect(attempt.outputTail?.suffix(5) == Data("LAST\n".utf8))
    }

    @Test("circuit breaker: open after the threshold, skipped while cooling down, then one probe closes it")
    func circuitBreaker() async throws {
        let harness = try Harness()
        let flag = harness.directory.path + "/healthy"
        let job = try task(shell("test -f \(flag)", retries: 0, extra: "    circuit_breaker: { failure_threshold: 2, cooldown: 10m }"))
        let clockTime = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
        var executor = harness.executor(ImmediateClock()) { clockTime.withLock { $0 } }
        let events = EventRecorder()
        executor.events = events.record
        #expect(try await executor.run(RunRequest(task: job, origin: .manual)).state == .failed)
        #expect(try await executor.run(RunRequest(task: job, origin: .manual)).state == .failed)
        #expect(try harness.store.circuitState(task: job.fullName).phase == .open)
        let skipped = try await executor.run(RunRequest(task: job, origin: .manual))
        #expect(skipped.state == .skipped && skipped.reason == "circuit_open")
        #expect(try harness.details(skipped.runID).run.reason == "circuit_open")
        clockTime.withLock { $0 += 11 * 60 }
        #expect(FileManager.default.createFile(atPath: flag, contents: nil))
        #expect(try await executor.run(RunRequest(task: job, origin: .manual)).state == .succeeded)
        #expect(try harness.store.circuitState(task: job.fullName) == .closed)
        #expect(events.all.filter { $0.hasPrefix("circuit") } == ["circuit open 2", "circuit half_open 2", "circuit closed 0"])
    }

    @Test("fallbacks run in order after the primary fails for good; the run says which succeeded")
    func fallbacks() async throws {
        let harness = try Harness()
        let job = try task("""
              - name: job
                command: ["/bin/false"]
                retries: 1
                fallbacks: [["/bin/sh", "-c", "exit 3"], ["/bin/true"]]
            """)
        var executor = harness.executor(ImmediateClock())
        let events = EventRecorder()
        executor.events = events.record
        let result = try await executor.run(RunRequest(task: job, origin: .manual))
        #expect(result.state == .succeeded)
        #expect(result.commandUsed == "fallback 2")
        #expect(events.all == [
            "start 1 primary", "end 1 failed code 1", "retry 2/2 in 1.0 seconds", "start 2 primary", "end 2 failed code 1",
            "fallback 1", "start 3 fallback 1", "end 3 failed code 3", "fallback 2", "start 4 fallback 2", "end 4 succeeded code 0",
            "run succeeded",
        ])
        #expect(try harness.details(result.runID).attempts.map(\.exitCode) == [1, 1, 3, 0])
    }

    @Test("on_failure runs between attempts with the failure in its environment")
    func onFailure() async throws {
        let harness = try Harness()
        let notes = harness.directory.path + "/notes"
        let job = try task(shell("exit 7", retries: 2, extra: "    on_failure: { shell: 'echo \"$BELFRY_ATTEMPT $BELFRY_EXIT_CODE $BELFRY_ERROR\" >> \(notes)' }"))
        var executor = harness.executor(ImmediateClock())
        let events = EventRecorder()
        executor.events = events.record
        let result = try await executor.run(RunRequest(task: job, origin: .manual))
        #expect(result.state == .failed && result.attempts == 3)
        #expect(events.all == [
            "start 1 primary", "end 1 failed code 7", "on_failure 1 code 0", "retry 2/3 in 1.0 seconds",
            "start 2 primary", "end 2 failed code 7", "on_failure 2 code 0", "retry 3/3 in 2.0 seconds",
            "start 3 primary", "end 3 failed code 7", "run failed",
        ])
        // Between attempts 1-2 and 2-3; not after the last one.
        #expect(try String(contentsOfFile: notes, encoding: .utf8) == "1 7 exit code 7\n2 7 exit code 7\n")
    }

    @Test(
        "what cannot start is a clear failed run, not a crash",
        arguments: [
            ("command: [\"/nonexistent/program\"]", "/nonexistent/program: no such file"),
            ("command: [\"NOT_EXECUTABLE\"]", "not executable"),
            ("command: [\"no-such-program-anywhere\"]", "no-such-program-anywhere"),
        ])
    func cannotStart(command: String, reason: String) async throws {
        let harness = try Harness()
        let plain = try harness.directory.write("notes.txt", "just text\n")  // mode 0644
        let job = try task("  - name: job\n    \(command.replacingOccurrences(of: "NOT_EXECUTABLE", with: plain))\n    retries: 3\n")
        let result = try await harness.executor(ImmediateClock()).run(RunRequest(task: job, origin: .manual))
        #expect(result.state == .failed)
        #expect(result.attempts == 1, "a command that cannot start is not retried")
        #expect(result.reason?.contains(reason) == true, "\(result.reason ?? "")")
    }

    @Test("a bad working directory or an unknown user fails the run with the reason")
    func badEnvironment() async throws {
        let harness = try Harness()
        for (environment, reason) in [("working_directory: /nonexistent/dir", "working directory /nonexistent/dir does not exist"),
                                      ("user: no-such-user-here", "unknown user \"no-such-user-here\"")] {
            let definitions = try DefinitionLoader.load(files: [("t.yaml", Array("environment: { \(environment) }\ntasks:\n  - { name: job, command: [\"/bin/true\"] }\n".utf8))])
            let result = try await harness.executor(ImmediateClock()).run(RunRequest(task: definitions.tasks[0], origin: .manual))
            #expect(result.state == .failed)
            #expect(result.reason?.contains(reason) == true, "\(result.reason ?? "")")
        }
    }

    @Test("an attempt that prints nothing leaves no log file; one that prints has its output in one")
    func silentAttemptHasNoFile() async throws {
        let harness = try Harness()
        let executor = harness.executor(ImmediateClock())
        let silent = try await executor.run(RunRequest(task: try task(shell("true", retries: 0)), origin: .manual))
        let speaking = try await executor.run(RunRequest(task: try task(shell("echo said", retries: 0)), origin: .manual))
        let quiet = try #require(try harness.details(silent.runID).attempts.first)
        let loud = try #require(try harness.details(speaking.runID).attempts.first)
        #expect(!FileManager.default.fileExists(atPath: try #require(quiet.logPath)))
        #expect(AttemptLogs.contents(of: quiet) == Data())
        #expect(AttemptLogs.contents(of: loud) == Data("said\n".utf8))
    }

    @Test("a log that cannot be written fails the attempt with the reason, and no process runs")
    func unwritableLog() async throws {
        let harness = try Harness()
        try Data().write(to: URL(fileURLWithPath: harness.directory.path + "/logs"))  // a file where the directory goes
        let marker = harness.directory.path + "/ran"
        let result = try await harness.executor(ImmediateClock()).run(RunRequest(task: try task(shell("touch \(marker)", retries: 0)), origin: .manual))
        #expect(result.state == .failed)
        #expect(result.reason?.contains("cannot write the log \(harness.directory.path)/logs/") == true, "\(result.reason ?? "")")
        #expect(!FileManager.default.fileExists(atPath: marker), "the job ran without its log")
    }

    @Test("the job environment and {{name}} expansion")
    func jobEnvironment() async throws {
        let harness = try Harness()
        let job = try task("""
              - name: job
                command: ["/bin/sh", "-c", "echo arg=$1 env=$GREETING run=$BELFRY_RUN_ID task=$BELFRY_TASK attempt=$BELFRY_ATTEMPT day=$BELFRY_INPUT_DAY inputs=$BELFRY_INPUTS", "sh", "{{day}}"]
                env: { GREETING: hello }
                params: { day: { required: true }, mode: { default: fast } }
            """)
        let result = try await harness.executor(ImmediateClock()).run(RunRequest(task: job, origin: .manual, inputs: ["day": "2026-11-23"]))
        #expect(result.state == .succeeded)
        let tail = String(decoding: try #require(try harness.details(result.runID).attempts.first?.outputTail), as: UTF8.self)
        #expect(tail == "arg=2026-11-23 env=hello run=\(result.runID) task=t.job attempt=1 day=2026-11-23 inputs={\"day\":\"2026-11-23\",\"mode\":\"fast\"}\n")
        let missing = try await harness.executor(ImmediateClock()).run(RunRequest(task: job, origin: .manual))
        #expect(missing.state == .failed && missing.reason?.contains("needs input \"day\"") == true)
    }

    @Test("a job starts clean: its own session, default signal dispositions, nothing blocked, no descriptor of the daemon's, input from /dev/null")
    func cleanStart() async throws {
        // What the daemon's process holds that a job must not inherit: an ignored signal, a
        // descriptor opened without O_CLOEXEC.
        let previous = signal(SIGUSR2, SIG_IGN)
        defer { signal(SIGUSR2, previous) }
        let leaked = open("/dev/null", O_RDONLY)
        defer { close(leaked) }
        let harness = try Harness()
        func output(_ command: String) async throws -> [Substring] {
            let job = try task("  - name: job\n    command: \(command)\n")
            let result = try await harness.executor(ImmediateClock()).run(RunRequest(task: job, origin: .manual))
            #expect(result.state == .succeeded)
            return String(decoding: try #require(try harness.details(result.runID).attempts.first?.outputTail), as: UTF8.self).split(separator: "\n")
        }
        // The masks of the started program itself: a shell blocks every signal while it waits
        // for a child, so it cannot be asked.
        var masks: [String: UInt64] = [:]
        for line in try await output(#"["/bin/grep", "^Sig", "/proc/self/status"]"#) {
            let fields = line.split(separator: ":")
            masks[String(fields[0])] = UInt64(fields[1].trimmingCharacters(in: .whitespaces), radix: 16)
        }
        #expect(masks["SigBlk"] == 0, "\(masks)")
        // Signals 32 and 33 are glibc's own (thread cancellation, set*id): its posix_spawn
        // leaves them ignored across exec; every glibc program sets its own handlers for them.
        #expect(masks["SigIgn"].map { $0 & ~0x1_8000_0000 } == 0, "\(masks)")
        let shell = #"["/bin/sh", "-c", "[ -e /proc/$$/fd/\#(leaked) ] && echo leaked; echo in $(readlink /proc/$$/fd/0); echo session $(($(ps -o sid= -p $$) - $$))"]"#
        #expect(try await output(shell) == ["in /dev/null", "session 0"])
    }

    @Test("a task with user: runs as that user, with that user's groups only, in a session of its own; many at once while threads start",
          .enabled(if: getuid() == 0, "needs root"))
    func runsAsUser() async throws {
        let harness = try Harness()
        let command = #"id -un; id -G; echo $$ $(ps -o sid= -p $$); grep ^Sig /proc/self/status"#
        let definitions = try DefinitionLoader.load(files: [("t.yaml", Array("environment: { user: nobody }\ntasks:\n  - { name: job, command: [\"/bin/sh\", \"-c\", \"\(command)\"] }\n".utf8))])
        let expectedGroups = try #require(getpwnam("nobody")).pointee.pw_gid
        let executor = harness.executor(ImmediateClock())
        // Twenty at once: each attempt starts threads of its own while others fork (a child
        // forked beside a thread being created once hung in glibc's setgid).
        try await withThrowingTaskGroup(of: RunResult.self) { group in
            for _ in 0..<20 { group.addTask { try await executor.run(RunRequest(task: definitions.tasks[0], origin: .manual)) } }
            for try await result in group {
                #expect(result.state == .succeeded)
                let lines = String(decoding: try #require(try harness.details(result.runID).attempts.first?.outputTail), as: UTF8.self).split(separator: "\n")
                try #require(lines.count >= 3)
                #expect(lines[0] == "nobody")
                #expect(lines[1] == "\(expectedGroups)", "nobody's groups, none of root's")
                let ids = lines[2].split(separator: " ")
                #expect(ids.count == 2 && ids.first == ids.last, "its own session")
                #expect(lines.contains("SigBlk:\t0000000000000000"), "\(lines)")
            }
        }
    }

    @Test("an orphaned attempt whose pid was never recorded is found by its environment, its whole group taken down")
    func orphansByEnvironment() async throws {
        let directory = try TemporaryDirectory()
        func start(run: Int) throws -> (Process, String) {
            let pids = directory.path + "/pids-\(run)"
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
            process.arguments = ["sh", "-c", "sleep 600 & echo $$ $! > \(pids); wait"]
            process.environment = ["BELFRY_DATABASE": directory.path + "/db.sqlite", "BELFRY_RUN_ID": String(run), "PATH": "/usr/bin:/bin"]
            try process.run()
            return (process, pids)
        }
        let (orphan, orphanPIDs) = try start(run: 7)
        let (other, otherPIDs) = try start(run: 8)
        func pids(_ file: String) async throws -> [Int32] {
            for _ in 0..<200 {
                if let text = try? String(contentsOfFile: file, encoding: .utf8), text.hasSuffix("\n") {
                    return text.split(whereSeparator: \.isWhitespace).compactMap { Int32($0) }
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            return []
        }
        let orphans = try await pids(orphanPIDs)
        let others = try await pids(otherPIDs)
        #expect(orphans.count == 2 && others.count == 2)
        let groups = await terminateOrphanedAttempts(database: directory.path + "/db.sqlite", runs: [7], grace: .seconds(2))
        // The orphan's group; and, when the scan comes before it has exited, that of `setsid`'s
        // parent (the process started here, its own group's leader, with the same environment).
        #expect(groups.contains(orphans[0]), "\(groups)")
        #expect(Set(groups).isSubset(of: [orphans[0], orphan.processIdentifier]), "\(groups)")
        await orphan.ended()
        #expect(orphans.allSatisfy { !isAlive($0) }, "the orphan or its child survived")
        #expect(others.allSatisfy { isAlive($0) }, "another run's process was taken down")
        for pid in others { kill(pid, SIGKILL) }
        await other.ended()
    }
}
