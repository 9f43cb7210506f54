import ArgumentParser
import BelfryPostgres
import Foundation

/// The `belfry` command line.
struct Belfry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "belfry",
        abstract: "A cron-style job scheduler with exact time-zone and DST rules.",
        version: BuildDescription.line,
        subcommands: [Next.self, Validate.self, Deploy.self, TriggerCommand.self, DaemonCommand.self, RunTask.self, Runs.self, Logs.self, Stats.self, Prune.self, StepCommand.self, Nodes.self, CopyStore.self, HTTPToken.self, ImportCommand.self, GuardAttempts.self]
    )
}

/// An error a command reports to the user: lines on stderr (one per problem, then a summary
/// prefixed `belfry:`) and a non-zero exit.
struct CommandFailure: Error, CustomStringConvertible {
    var lines: [String] = []
    var description: String
    var exitCode: Int32 = 2

    init(_ description: String) {
        self.description = description
    }

    init(_ error: some CustomStringConvertible) {
        self.description = error.description
    }

    init(lines: [String], summary: String, exitCode: Int32) {
        self.lines = lines
        self.description = summary
        self.exitCode = exitCode
    }
}

@main
enum Main {
    static func main() async {
        // Copied before the argument strings are overwritten: `CommandLine.arguments` is read
        // from them on first use.
        let arguments = Array(CommandLine.arguments.dropFirst())
        hidePasswordsFromProcessList()
        do {
            var command = try Belfry.parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let failure as CommandFailure {
            for line in failure.lines { FileHandle.standardError.write(Data("\(line)\n".utf8)) }
            fail(failure.description, code: failure.exitCode)
        } catch {
            let code = Belfry.exitCode(for: error)
            guard code != .success else { Belfry.exit(withError: error) }  // --help, --version
            // ArgumentParser's own message, on one line: bad input gets a one-line reason.
            let message = Belfry.message(for: error).split(whereSeparator: \.isNewline).first ?? ""
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

    static func fail(_ message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data("belfry: \(message)\n".utf8))
        exit(code)
    }
}
