import ArgumentParser
import BelfryCommandLine
import BelfryPostgres
import Foundation

/// `belfry-daemon`: every command, the daemon among them. `belfry` hands it the commands it does
/// not serve itself; it can also be run by its own name.
struct Belfry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: CommandLineText.name,
        abstract: CommandLineText.abstract,
        version: BuildDescription.line,
        subcommands: localCommands + [DaemonCommand.self, RunTask.self, StepCommand.self, HTTPToken.self, GuardAttempts.self]
    )
}

@main
enum Main {
    static func main() async {
        // Copied before the argument strings are overwritten: `CommandLine.arguments` is read
        // from them on first use.
        let arguments = Array(CommandLine.arguments.dropFirst())
        DatabaseOptions.connectPostgreSQL = { location, logDirectory in try await PostgresStore.connect(location, logDirectory: logDirectory) }
        await CommandLineMain.run(Belfry.self, arguments: arguments) { _ in
            CommandLineMain.fail("the PostgreSQL client is missing from this build", code: 2)
        }
    }
}
