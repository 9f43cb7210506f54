import ArgumentParser
import BelfryConfig
import BelfryStore
import Foundation

/// `--database PATH`, shared by every command that uses the state database.
struct DatabaseOptions: ParsableArguments {
    @Option(help: "The SQLite database. Default: $BELFRY_DATABASE, else $XDG_STATE_HOME/belfry/belfry.sqlite.")
    var database: String?

    func open() throws -> BelfryDatabase {
        do {
            return try BelfryDatabase(path: database ?? BelfryDatabase.defaultPath())
        } catch {
            throw CommandFailure(error)
        }
    }
}

/// The schedules directory: an argument, else `--schedules`, else `./schedules`.
struct SchedulesOptions: ParsableArguments {
    @Argument(help: "The directory of definition files (*.yaml). Default: --schedules, else ./schedules.")
    var directory: String?

    @Option(help: "The directory of definition files.")
    var schedules: String?

    var path: String { directory ?? schedules ?? "schedules" }

    /// The validated definitions, or every problem as a failure (one line each).
    func load() throws -> Definitions {
        do {
            return try DefinitionLoader.load(directory: path)
        } catch {
            let count = error.diagnostics.count
            throw CommandFailure(
                lines: error.diagnostics.map(\.description),
                summary: "\(count) problem\(count == 1 ? "" : "s") in \(path); nothing was changed", exitCode: 1)
        }
    }

    /// Deploys the directory (all or nothing). Files whose bytes are exactly those deployed last
    /// are not read again: a restart with 100,000 unchanged triggers skips parsing them.
    func deploy(to store: BelfryDatabase, owner: String) throws -> DeploySummary {
        do {
            if let fingerprints = DefinitionLoader.fingerprints(directory: path),
                let summary = try store.deployUnchanged(fingerprints: fingerprints, owner: owner)
            {
                return summary
            }
            let definitions = try load()
            return try store.deploy(definitions, owner: owner)
        } catch let failure as CommandFailure {
            throw failure
        } catch {
            throw CommandFailure("deploy failed, nothing was changed: \(error)")
        }
    }
}

/// The user's name, for `owner` and `updated_by`.
func currentUser() -> String {
    if let user = ProcessInfo.processInfo.environment["USER"], !user.isEmpty { return user }
    if let entry = getpwuid(getuid()), let name = entry.pointee.pw_name { return String(cString: name) }
    return "uid \(getuid())"
}

/// Prints an Encodable as pretty JSON on stdout.
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    FileHandle.standardOutput.write(try encoder.encode(value))
    FileHandle.standardOutput.write(Data("\n".utf8))
}
