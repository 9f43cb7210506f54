import ArgumentParser
import BelfryCommandLine
import BelfryConfig
import BelfrySchedule
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
            writeToStandardError("belfry step \(name): not inside a Belfry run ($BELFRY_RUN_ID is not set): running the command without recording it\n")
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
            writeToStandardError("belfry step \(name): replayed the result stored by an earlier attempt of run \(runID ?? 0)\n")
        }
        if status != 0 { throw ExitCode(status) }
    }
}

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
        writeToStandardError(summary + "\n")
        switch result.state {
        case .succeeded: return
        case .timedOut: throw ExitCode(124)
        case .cancelled: throw ExitCode(130)
        case .skipped: throw ExitCode(75)
        default: throw ExitCode(result.exitCode.map { $0 == 0 ? 1 : $0 } ?? 1)
        }
    }
}
