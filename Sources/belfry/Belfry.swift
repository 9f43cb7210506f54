import ArgumentParser
import BelfryCommandLine
import Foundation

/// `belfry`: serves the commands that need only the schedule core, the definitions and a SQLite
/// store, and hands every other one to `belfry-daemon` beside it. It links neither the
/// executor, nor the HTTP server, nor the PostgreSQL client: a smaller program starts faster.
struct Belfry: ParsableCommand {
    /// The super-command name makes ArgumentParser skip its look for
    /// `--generate-completion-script` (the parse of two commands of its own: a sixth of `belfry
    /// next`'s time). It would show in help texts, which `belfry-daemon` prints instead.
    /// No help names either: help is `belfry-daemon`'s to print (`handedOffFlags`), and
    /// ArgumentParser makes the `--help-hidden` name at every parse by interpolating an enum
    /// (reflected with `Mirror`: 1.2M instructions, a seventeenth of `belfry trigger list`).
    static let configuration = CommandConfiguration(
        commandName: CommandLineText.name, _superCommandName: CommandLineText.name, abstract: CommandLineText.abstract,
        subcommands: localCommands, helpNames: [])

    /// Arguments whose answer `belfry-daemon` gives: help and the generated documents.
    static let handedOffFlags = [
        "-h", "-help", "--help", "--help-hidden", "-help-hidden", "--version", "--experimental-dump-help", "--generate-completion-script",
    ]
}

@main
enum Main {
    static func main() {
        // Copied before the argument strings are overwritten: `CommandLine.arguments` is read
        // from them on first use.
        let arguments = Array(CommandLine.arguments.dropFirst())
        let program = CommandLine.arguments.first ?? CommandLineText.name
        let handOff: @Sendable ([String]) -> Never = { arguments in Self.handOff(arguments, program: program) }
        guard let first = arguments.first, localCommands.contains(where: { $0.configuration.commandName == first }),
            !arguments.contains(where: Belfry.handedOffFlags.contains)
        else {
            handOff(arguments)  // the daemon, `run`, `step`, help, --version, a mistyped command ...
        }
        // Not an `async main`: that ends the main thread with `pthread_exit`, and in a static
        // program the unwinding this starts first sorts the frame descriptions of the whole
        // binary (12 ms, more than all the rest). `next` and `validate` run on this thread.
        CommandLineMain.runBlocking(Belfry.self, arguments: arguments, handOff: handOff)
    }

    /// Replaces this process with `belfry-daemon` (same directory, same arguments, same pid: a
    /// daemon started as `belfry daemon` under systemd stays the process systemd started).
    static func handOff(_ arguments: [String], program: String) -> Never {
        let path = (CommandLineMain.executable as NSString).deletingLastPathComponent + "/belfry-daemon"
        let argv = ([program] + arguments).map { strdup($0) } + [nil]
        execv(path, argv)
        let reason = String(cString: strerror(errno))
        CommandLineMain.fail("cannot start \(path) (\(reason)): belfry-daemon serves `belfry \(arguments.first ?? "--help")` and must be installed beside belfry", code: 127)
    }
}
