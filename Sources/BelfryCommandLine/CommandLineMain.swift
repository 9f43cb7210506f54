import ArgumentParser
import BelfryListings
import BelfryStore
import Foundation

/// The commands that need only the schedule core, the definitions and a SQLite store: the
/// `belfry` executable serves them itself, and hands every other command (and any command given
/// a PostgreSQL database) to `belfry-daemon`, which serves them all. `belfry next` and the
/// listings start in a third of the time that way (docs/performance.md).
public let localCommands: [any ParsableCommand.Type] = [
    Next.self, Validate.self, Deploy.self, TriggerCommand.self, Runs.self, Logs.self, Stats.self, Prune.self, Nodes.self,
    CopyStore.self, ImportCommand.self,
]

/// What the command line says of itself.
public enum CommandLineText {
    public static let name = "belfry"
    public static let abstract = "A cron-style job scheduler with exact time-zone and DST rules."
}

/// An error a command reports to the user: lines on stderr (one per problem, then a summary
/// prefixed `belfry:`) and a non-zero exit.
public struct CommandFailure: Error, CustomStringConvertible {
    public var lines: [String] = []
    public var description: String
    public var exitCode: Int32 = 2

    public init(_ description: String) {
        self.description = description
    }

    public init(_ error: some CustomStringConvertible) {
        self.description = error.description
    }

    public init(lines: [String], summary: String, exitCode: Int32) {
        self.lines = lines
        self.description = summary
        self.exitCode = exitCode
    }
}

/// Thrown by `DatabaseOptions.open` in the `belfry` executable when the database is a PostgreSQL
/// URL: the command is handed to `belfry-daemon`, which has the PostgreSQL client.
public struct NeedsPostgreSQL: Error {}

public enum CommandLineMain {
    /// Parses `arguments` under `root` and runs the command; never returns. `handOff` takes a
    /// command this executable cannot serve (`NeedsPostgreSQL`).
    public static func run<Root: ParsableCommand>(_ root: Root.Type, arguments: [String], handOff: @Sendable ([String]) -> Never) async -> Never {
        await execute(parse(root, arguments: arguments), root: root, arguments: arguments, handOff: handOff)
    }

    /// `run` for a program without an `async main`: every command runs on the calling thread,
    /// an asynchronous one as a task whose jobs this thread runs (`CallingThreadExecutor`): no
    /// thread is started for a listing's one read.
    public static func runBlocking<Root: ParsableCommand>(_ root: Root.Type, arguments: [String], handOff: @escaping @Sendable ([String]) -> Never) -> Never {
        var command = parse(root, arguments: arguments)
        if command is AsyncParsableCommand {
            nonisolated(unsafe) let parsed = command  // handed to the task; this thread no longer uses it
            let executor = CallingThreadExecutor()
            Task.detached(executorPreference: executor) { await execute(parsed, root: root, arguments: arguments, handOff: handOff) }
            executor.runJobs()
        }
        do {
            try command.run()
            succeed()
        } catch {
            report(error, root: root, arguments: arguments, handOff: handOff)
        }
    }

    /// Runs the parsed `command` and ends the process as it ends.
    private static func execute<Root: ParsableCommand>(
        _ command: ParsableCommand, root: Root.Type, arguments: [String], handOff: @Sendable ([String]) -> Never
    ) async -> Never {
        var command = command
        do {
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            succeed()
        } catch {
            report(error, root: root, arguments: arguments, handOff: handOff)
        }
    }

    /// The command `arguments` name; a mistake, `--help` or `--version` ends the process here.
    static func parse<Root: ParsableCommand>(_ root: Root.Type, arguments: [String]) -> ParsableCommand {
        hidePasswordsFromProcessList()
        do {
            return try root.parseAsRoot(arguments)
        } catch {
            report(error, root: root, arguments: arguments, handOff: { _ in exit(2) })
        }
    }

    /// Ends a command that did its work: what it printed is flushed, and a standard output that
    /// could not take it (a full disk) fails the command, instead of a success with its output
    /// cut short. A reader that stopped early (`| head`) is no failure.
    static func succeed() -> Never {
        if fflush(nil) != 0, errno != EPIPE { standardOutputFailed(errno) }
        exit(0)
    }

    /// Ends the process as `error` says: lines and a summary on stderr, the exit status.
    static func report<Root: ParsableCommand>(_ error: any Error, root: Root.Type, arguments: [String], handOff: ([String]) -> Never) -> Never {
        switch error {
        case is NeedsPostgreSQL:
            handOff(arguments)
        case let status as ExitCode:
            exit(status.rawValue)  // the command said why already (`belfry run`: the run's end)
        case let failure as CommandFailure:
            for line in failure.lines { writeToStandardError("\(line)\n") }
            fail(failure.description, code: failure.exitCode)
        default:
            let code = root.exitCode(for: error)
            guard code != .success else { root.exit(withError: error) }  // --help, --version
            // ArgumentParser's own message, on one line: bad input gets a one-line reason.
            let message = root.message(for: error).split(whereSeparator: \.isNewline).first ?? ""
            fail(String(message), code: code.rawValue)
        }
    }

    /// A database URL given with its password on the command line (`--database
    /// postgresql://user:PASSWORD@...`) is readable by every user in `ps` and
    /// `/proc/PID/cmdline`: the password's bytes in the process's own argument strings, which
    /// those show, are overwritten with `*` (the arguments were copied before, to be parsed). `$PGPASSWORD`, a password file or
    /// systemd's credentials keep it out of the command line from the start.
    static func hidePasswordsFromProcessList() {
        for index in 1..<Int(CommandLine.argc) {
            guard let argument = CommandLine.unsafeArgv[index] else { continue }
            let text = String(cString: argument)
            let redacted = PostgresLocation.redact(text)
            guard redacted != text, let scheme = text.range(of: "://") else { continue }
            // Overwrite in place, byte for byte, what lies between the user's ':' and the '@'.
            let bytes = Array(text.utf8)
            let start = text.utf8.distance(from: text.startIndex, to: scheme.upperBound)
            guard let at = bytes[start...].firstIndex(of: UInt8(ascii: "@")),
                let colon = bytes[start..<at].firstIndex(of: UInt8(ascii: ":"))
            else { continue }
            for offset in (colon + 1)..<at { argument[offset] = CChar(UInt8(ascii: "*")) }
        }
    }

    /// This process's executable, as the kernel knows it (`/proc/self/exe`), else `argv[0]`.
    public static var executable: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        return length > 0 ? String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
    }

    public static func fail(_ message: String, code: Int32) -> Never {
        writeToStandardError("belfry: \(message)\n")
        exit(code)
    }
}

/// A task executor whose jobs run on the thread that calls `runJobs`, in the order they come.
/// Work a task sends elsewhere (an actor of its own, a dispatch queue) comes back here when it
/// resumes the task.
final class CallingThreadExecutor: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []  // guarded by `condition`

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Runs the jobs as they come, for ever: the command's task ends the process.
    func runJobs() -> Never {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            condition.unlock()
            for job in batch { job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
    }
}
