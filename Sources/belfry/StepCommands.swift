import ArgumentParser
import BelfryExecutor
import BelfryListings
import BelfryStore
import Foundation

/// `belfry step NAME -- CMD ARGS...` (SPEC §5).
struct StepCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "step",
        abstract: "Inside a run, run CMD once: a later attempt of the same run replays its stored stdout and exit status.",
        discussion: "Inside a run started by Belfry it asks the daemon (or `belfry run`) that launched it, through $BELFRY_STEP_SOCKET with the attempt's own $BELFRY_STEP_TOKEN: a job needs no access to the database. Given only $BELFRY_RUN_ID, it uses the database named by $BELFRY_DATABASE. Outside a run, CMD just runs (and a note says so on stderr).")

    @Argument(help: "The step's name, unique within the run.") var name: String
    @Argument(parsing: .postTerminator, help: "The command and its arguments, after --.") var command: [String] = []

    func run() async throws {
        guard !command.isEmpty else { throw CommandFailure("give the command after --: belfry step \(name) -- CMD ARGS...") }
        let environment = ProcessInfo.processInfo.environment
        let runID = environment["BELFRY_RUN_ID"].flatMap(Int64.init)
        var book: (any StepBook)?
        if let socket = environment["BELFRY_STEP_SOCKET"], let token = environment["BELFRY_STEP_TOKEN"] {
            book = StepChannelClient(path: socket, token: token)
        } else if let runID {
            // Started by hand with a run's variables: the store named by $BELFRY_DATABASE.
            book = StoreStepBook(store: try await DatabaseOptions.open(environment["BELFRY_DATABASE"] ?? BelfryDatabase.defaultPath()), run: runID)
        } else {
            FileHandle.standardError.write(Data("belfry step \(name): not inside a Belfry run ($BELFRY_RUN_ID is not set): running the command without recording it\n".utf8))
        }
        let status: Int32
        let outcome: Step.Outcome
        do {
            (status, outcome) = try await Step.run(name: name, command: command, book: book) { chunk in
                _ = write(1, chunk.baseAddress, chunk.count)
            }
        } catch {
            throw CommandFailure("step \(name): \(error)")
        }
        if outcome == .replayed {
            FileHandle.standardError.write(Data("belfry step \(name): replayed the result stored by an earlier attempt of run \(runID ?? 0)\n".utf8))
        }
        if status != 0 { throw ExitCode(status) }
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
        guard !statistics.isEmpty else { return print("no finished runs") }
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
    @Option(help: "Runs kept per trigger (manual runs: per task).") var runsPerTrigger = 1000
    @Option(help: "Runs queued longer ago than this many days go.") var maxAgeDays = 90

    func run() async throws {
        guard runsPerTrigger > 0, maxAgeDays > 0 else { throw CommandFailure("--runs-per-trigger and --max-age-days must be positive") }
        let store = try await database.open()
        var policy = HistoryPolicy()
        policy.runsPerTrigger = runsPerTrigger
        policy.maxAge = TimeInterval(maxAgeDays) * 86400
        let before = try await store.runCount()
        let removed = try await store.pruneHistory(policy, now: Date())
        print("pruned \(removed) of \(before) runs (keeping \(runsPerTrigger) per trigger, \(maxAgeDays) days)")
    }
}
