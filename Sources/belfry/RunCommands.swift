import ArgumentParser
import BelfryConfig
import BelfryListings
import BelfryExecutor
import BelfrySchedule
import BelfryStore
import Foundation

/// `belfry run ENV.TASK`: runs a deployed task now, in the foreground, recorded as a manual run.
struct RunTask: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a deployed task now, in the foreground; the exit status mirrors the run's.",
        discussion: "The job's output (stdout and stderr, one stream as in its log) streams to standard output and to the attempt's log. Ctrl-C cancels the attempt's whole process group and records the run cancelled. Exit status: 0 succeeded, the job's exit code when it failed, 124 timed out, 130 cancelled, 75 skipped (circuit open).")

    @OptionGroup var database: DatabaseOptions
    @Argument(help: "The task (ENV.TASK).") var task: String
    @Option(name: .customLong("input"), help: "An input value, NAME=VALUE; repeat for several.") var inputs: [String] = []

    func run() async throws {
        var given: [String: String] = [:]
        for input in inputs {
            guard let equals = input.firstIndex(of: "="), equals != input.startIndex else {
                throw CommandFailure("--input takes NAME=VALUE, not \"\(input)\"")
            }
            given[String(input[..<equals])] = String(input[input.index(after: equals)...])
        }
        let store = try await database.open()
        let definition: TaskDefinition
        do { definition = try await store.task(named: task) } catch { throw CommandFailure("\(error)") }
        var executor = RunExecutor(
            store: store, clock: ContinuousClock(), now: { Date() }, random: { Double.random(in: 0..<1) },
            logDirectory: store.logDirectory)
        executor.echo = { chunk in _ = write(1, chunk.baseAddress, chunk.count) }
        executor.baseEnvironment = database.jobEnvironment(ProcessInfo.processInfo.environment)
        executor.steps = try? await StepChannel.open(directory: store.logDirectory, store: store)
        let serving = executor.steps.map { steps in Task { await steps.run() } }
        defer { serving?.cancel() }
        let running = Task { try await executor.run(RunRequest(task: definition, origin: .manual, inputs: given)) }
        // Ctrl-C cancels the run: the executor tears the attempt's process group down.
        signal(SIGINT, SIG_IGN)
        let interrupt = DispatchSource.makeSignalSource(signal: SIGINT)
        interrupt.setEventHandler { running.cancel() }
        interrupt.resume()
        let result = try await running.value
        interrupt.cancel()
        let summary = "belfry: run \(result.runID) \(result.state.rawValue)" + (result.reason.map { ": \($0)" } ?? "")
            + " after \(result.attempts) attempt\(result.attempts == 1 ? "" : "s"); `belfry runs show \(result.runID)` has the details"
        FileHandle.standardError.write(Data((summary + "\n").utf8))
        switch result.state {
        case .succeeded: return
        case .timedOut: throw ExitCode(124)
        case .cancelled: throw ExitCode(130)
        case .skipped: throw ExitCode(75)
        default: throw ExitCode(result.exitCode.map { $0 == 0 ? 1 : $0 } ?? 1)
        }
    }
}

/// `belfry runs` and `belfry runs show RUN`: run history.
struct Runs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs",
        abstract: "List runs, newest first.", subcommands: [List.self, Show.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List runs, newest first.")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "Only runs of this task (ENV.TASK).") var task: String?
        @Option(help: "Only runs of this trigger.") var trigger: String?
        @Option(help: "Only runs in this state (queued, running, succeeded, failed, timed_out, cancelled, skipped, missed).") var state: String?
        @Option(help: "Only runs queued at or after this time (RFC 3339 or local date-time).") var since: String?
        @Option(help: "At most this many runs.") var limit = 50
        @Flag(help: "Print a JSON array.") var json = false

        func run() async throws {
            var filter = RunFilter()
            filter.task = task
            filter.trigger = trigger
            filter.limit = limit
            if let state {
                guard let parsed = RunState(rawValue: state) else {
                    throw CommandFailure("--state must be one of \(RunState.allCases.map(\.rawValue).joined(separator: ", ")), not \"\(state)\"")
                }
                filter.state = parsed
            }
            if let since { filter.since = try sinceDate(since) }
            let runs = try await database.open(readOnly: true).runs(matching: filter)
            if json { return JSONValue.array(runs.map(Listing.run)).print() }
            guard !runs.isEmpty else { return print("no runs") }
            var rows = [["RUN", "TASK", "TRIGGER", "SLOT", "STATE", "ATTEMPTS", "EXIT", "QUEUED", "DURATION", "REASON"]]
            // Runs of triggers that fire between whole minutes are told apart by their seconds.
            let seconds = runs.contains { ($0.slot?.secondsSinceEpoch ?? 0) % 60 != 0 }
            for run in runs {
                rows.append([
                    run.id.map(String.init) ?? "-", run.task, run.trigger ?? "(manual)", run.slot?.rfc3339 ?? "-", run.state.rawValue,
                    String(run.attempts), run.exitCode.map(String.init) ?? "-", utcMinutes(run.queuedAt, seconds: seconds),
                    duration(run), run.reason ?? "",
                ])
            }
            printTable(rows)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a run with its attempts and steps.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The run's id.") var runID: Int64
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            guard let details = try await database.open(readOnly: true).run(id: runID) else { throw CommandFailure(StoreError.unknownRun(runID)) }
            if json {
                return Listing.runDetail(details).print()
            }
            let r = details.run
            print("run \(runID): \(r.task) \(r.trigger ?? "(manual)") \(r.state.rawValue)" + (r.reason.map { " (\($0))" } ?? ""))
            print("  origin \(r.origin.rawValue), slot \(r.slot?.rfc3339 ?? "-"), queued \(rfc3339(r.queuedAt)), duration \(duration(r)), command \(r.commandUsed ?? "-")")
            for attempt in details.attempts {
                let end = attempt.timedOut ? "timed out" : attempt.signal.map { "signal \($0)" } ?? attempt.exitCode.map { "exit \($0)" }
                    ?? (attempt.finishedAt == nil ? "running" : "interrupted")
                print("  attempt \(attempt.number): pid \(attempt.pid.map(String.init) ?? "-"), \(end), started \(rfc3339(attempt.startedAt)), log \(attempt.logPath ?? "-")")
                if let tail = attempt.outputTail, !tail.isEmpty {
                    let lines = String(decoding: tail, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).suffix(5)
                    for line in lines where !line.isEmpty { print("    | \(line)") }
                }
            }
            for step in details.steps { print("  step \(step.name): exit \(step.exitCode) at \(rfc3339(step.finishedAt))") }
        }
    }
}

/// `belfry logs RUN`: the log of an attempt.
struct Logs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logs", abstract: "Print the log of a run's attempt (the last one by default).")
    @OptionGroup var database: DatabaseOptions
    @Argument(help: "The run's id.") var runID: Int64
    @Option(help: "Which attempt (1-based).") var attempt: Int?
    @Flag(help: "Keep printing as the attempt writes, until the run ends.") var follow = false

    func run() async throws {
        let store = try await database.open(readOnly: true)
        guard var details = try await store.run(id: runID) else { throw CommandFailure(StoreError.unknownRun(runID)) }
        let chosen = attempt.map { n in details.attempts.first { $0.number == n } } ?? details.attempts.last
        guard let record = chosen, let path = record.logPath else {
            throw CommandFailure(attempt.map { "run \(runID) has no attempt \($0)" } ?? "run \(runID) has no attempts yet")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            let reason = access(path, R_OK) == 0 ? "" : ": \(String(cString: strerror(errno)))"
            throw CommandFailure("cannot read \(path)\(reason)")
        }
        while true {
            let data = handle.readDataToEndOfFile()
            if !data.isEmpty { FileHandle.standardOutput.write(data) }
            guard follow, !details.run.state.isFinal else { break }
            try await Task.sleep(for: .milliseconds(250))
            details = try await store.run(id: runID) ?? details
        }
    }
}

/// UTC RFC 3339, as in the listings.
func rfc3339(_ date: Date) -> String { Listing.rfc3339(date) }

func duration(_ run: RunRecord) -> String {
    guard let start = run.startedAt, let end = run.finishedAt else { return "-" }
    return String(format: "%.3fs", end.timeIntervalSince(start))
}

func sinceDate(_ text: String) throws -> Date {
    do {
        let instant = try InstantText.parse(text, zone: TimeZoneDatabase.system.rules(for: "UTC"), field: "--since")
        return Date(timeIntervalSince1970: TimeInterval(instant.secondsSinceEpoch))
    } catch {
        throw CommandFailure("\(error)")
    }
}
