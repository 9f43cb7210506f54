import ArgumentParser
import BelfryConfig
import BelfryListings
import BelfrySchedule
import BelfryStore
import Foundation

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
        // Defaults are said in the help rather than given to ArgumentParser, which would describe
        // them at every parse (a reflection of the value's type: a million instructions).
        @Option(name: .customLong("limit"), parsing: .unconditional, help: "At most this many runs. Default: 50.") var givenLimit: Int?
        var limit: Int { givenLimit ?? 50 }
        @Flag(help: "Print a JSON array.") var json = false

        func run() async throws {
            guard limit > 0 else { throw CommandFailure("--limit must be at least 1, not \(limit)") }
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
            guard !runs.isEmpty else { return printLine("no runs") }
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
            printLine("run \(runID): \(r.task) \(r.trigger ?? "(manual)") \(r.state.rawValue)" + (r.reason.map { " (\($0))" } ?? ""))
            printLine("  origin \(r.origin.rawValue), slot \(r.slot?.rfc3339 ?? "-"), queued \(rfc3339(r.queuedAt)), duration \(duration(r)), command \(r.commandUsed ?? "-")")
            for attempt in details.attempts {
                let end = attempt.timedOut ? "timed out" : attempt.signal.map { "signal \($0)" } ?? attempt.exitCode.map { "exit \($0)" }
                    ?? (attempt.finishedAt == nil ? "running" : "interrupted")
                // A log file is made at the attempt's first output: name none that is not there.
                let log = attempt.logPath.map { path in
                    guard AttemptLogs.printedNothing(attempt) else { return path }
                    return attempt.finishedAt == nil ? "none yet (nothing printed so far)" : "none (nothing printed)"
                }
                printLine("  attempt \(attempt.number): pid \(attempt.pid.map(String.init) ?? "-"), \(end), started \(rfc3339(attempt.startedAt)), log \(log ?? "-")")
                if let tail = attempt.outputTail, !tail.isEmpty {
                    let lines = String(decoding: tail, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).suffix(5)
                    for line in lines where !line.isEmpty { printLine("    | \(line)") }
                }
            }
            for step in details.steps { printLine("  step \(step.name): exit \(step.exitCode) at \(rfc3339(step.finishedAt))") }
        }
    }
}

/// `belfry logs RUN`: the log of an attempt.
struct Logs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logs", abstract: "Print the log of a run's attempt (the last one by default).")
    @OptionGroup var database: DatabaseOptions
    @Argument(help: "The run's id.") var runID: Int64
    @Option(parsing: .unconditional, help: "Which attempt (1-based).") var attempt: Int?
    @Flag(help: "Keep printing as the attempt writes, until the run ends.") var follow = false

    func run() async throws {
        let store = try await database.open(readOnly: true)
        guard var details = try await store.run(id: runID) else { throw CommandFailure(StoreError.unknownRun(runID)) }
        let chosen = attempt.map { n in details.attempts.first { $0.number == n } } ?? details.attempts.last
        guard var record = chosen, let path = record.logPath else {
            throw CommandFailure(attempt.map { "run \(runID) has no attempt \($0)" } ?? "run \(runID) has no attempts yet")
        }
        // The file is made at the attempt's first output: an attempt that has printed nothing
        // has none, and its log is empty.
        var handle: FileHandle?
        while true {
            handle = handle ?? FileHandle(forReadingAtPath: path)
            if let handle {
                let data = handle.readDataToEndOfFile()
                data.withUnsafeBytes(writeToStandardOutput)
            } else if !AttemptLogs.printedNothing(record) {
                let reason = access(path, R_OK) == 0 ? "" : ": \(String(cString: strerror(errno)))"
                throw CommandFailure("cannot read \(path)\(reason)")
            }
            guard follow, !details.run.state.isFinal else { break }
            try await Task.sleep(for: .milliseconds(250))
            details = try await store.run(id: runID) ?? details
            record = details.attempts.first { $0.number == record.number } ?? record
        }
    }
}

/// `belfry stats`: per task success rate, attempts, retries and durations.
struct Stats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Per task: success rate, mean attempts, retry rate, p50/p95 duration.")
    @OptionGroup var database: DatabaseOptions
    @Option(help: "Only this task (ENV.TASK).") var task: String?
    @Option(help: "Only runs queued at or after this time (RFC 3339 or local date-time).") var since: String?
    @Flag(help: "Print a JSON array.") var json = false

    func run() async throws {
        let statistics = try await database.open(readOnly: true).statistics(task: task, since: try since.map(sinceDate))
        if json {
            return JSONValue.array(statistics.map(Listing.statistics)).print()
        }
        guard !statistics.isEmpty else { return printLine("no finished runs") }
        var rows = [["TASK", "RUNS", "SUCCESS", "MEAN ATTEMPTS", "RETRIED", "P50", "P95"]]
        for s in statistics {
            rows.append([
                s.task, String(s.runs), String(format: "%.1f%%", s.successRate * 100), String(format: "%.2f", s.meanAttempts),
                String(format: "%.1f%%", s.retryRate * 100), s.p50Duration.map { String(format: "%.3fs", $0) } ?? "-",
                s.p95Duration.map { String(format: "%.3fs", $0) } ?? "-",
            ])
        }
        printTable(rows)
    }
}

/// `belfry prune`: applies the history policy now (the daemon does it hourly).
struct Prune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Delete finished runs beyond the history policy, with their attempts and logs (the daemon does this hourly).")
    @OptionGroup var database: DatabaseOptions
    @Option(parsing: .unconditional, help: "Runs kept per trigger (manual runs: per task).") var runsPerTrigger = 1000
    @Option(parsing: .unconditional, help: "Runs queued longer ago than this many days go.") var maxAgeDays = 90

    func run() async throws {
        guard runsPerTrigger > 0, maxAgeDays > 0 else { throw CommandFailure("--runs-per-trigger and --max-age-days must be positive") }
        let store = try await database.open()
        var policy = HistoryPolicy()
        policy.runsPerTrigger = runsPerTrigger
        policy.maxAge = TimeInterval(maxAgeDays) * 86400
        let before = try await store.runCount()
        let removed = try await store.pruneHistory(policy, now: Date())
        printLine("pruned \(removed) of \(before) runs (keeping \(runsPerTrigger) per trigger, \(maxAgeDays) days)")
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
