import ArgumentParser
import Foundation

/// The `belfry` command line.
struct Belfry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "belfry",
        abstract: "A cron-style job scheduler with exact time-zone and DST rules.",
        subcommands: [Next.self, Validate.self, Deploy.self, TriggerCommand.self, DaemonCommand.self, RunTask.self, Runs.self, Logs.self, Stats.self, Prune.self, StepCommand.self, Nodes.self]
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
        do {
            var command = try Belfry.parseAsRoot()
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

    static func fail(_ message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data("belfry: \(message)\n".utf8))
        exit(code)
    }
}
