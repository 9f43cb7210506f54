import ArgumentParser
import BelfryConfig
import BelfryListings
import BelfryStore
import Foundation
import Synchronization

/// `--database PATH_OR_URL`, shared by every command that uses the state database.
public struct DatabaseOptions: ParsableArguments, Sendable {
    /// Connects to a PostgreSQL database (its location, the directory of this machine's attempt
    /// logs). Set by `belfry-daemon`, which has the PostgreSQL client, before any command runs;
    /// nil in `belfry`, whose commands then hand themselves to `belfry-daemon` (`NeedsPostgreSQL`).
    nonisolated(unsafe) public static var connectPostgreSQL: (@Sendable (PostgresLocation, String) async throws -> any Store)?

    public init() {}

    @Option(help: ArgumentHelp(
        "The SQLite database file, or a postgres:// URL. Default: $BELFRY_DATABASE, else $XDG_STATE_HOME/belfry/belfry.sqlite.",
        discussion: "A URL's password is better given through $PGPASSWORD, --database-password-file or systemd's $CREDENTIALS_DIRECTORY/database-password: other users can read command lines."))
    var database: String?

    @Option(help: "A file holding the PostgreSQL password (one line).")
    var databasePasswordFile: String?

    /// The database given, else the default.
    public var text: String { database ?? BelfryDatabase.defaultPath() }

    /// Whether several daemons may share it (a PostgreSQL URL).
    public var isShared: Bool { PostgresLocation.isURL(text) }

    /// What jobs inherit of `environment`: without any credential of the database — no
    /// `PGPASSWORD`, no password file or credentials directory, no variable holding the
    /// password — and with `BELFRY_DATABASE` naming the database without its password.
    public func jobEnvironment(_ environment: [String: String]) -> [String: String] {
        guard isShared else { return environment }
        let password = (try? PostgresLocation(text, environment: environment, passwordFile: databasePasswordFile))?.password
        return environment.filter { key, value in
            !["PGPASSWORD", "PGPASSFILE", "CREDENTIALS_DIRECTORY", "BELFRY_DATABASE"].contains(key)
                && !(password.map { !$0.isEmpty && value.contains($0) } ?? false)
        }
    }

    /// `readOnly`: the command only reads, so a SQLite file this user may not write is opened
    /// read-only rather than refused.
    public func open(readOnly: Bool = false) async throws -> any Store {
        try await Self.open(text, passwordFile: databasePasswordFile, readOnly: readOnly)
    }

    /// Opens a SQLite file or connects to a PostgreSQL URL; errors never show a password.
    public static func open(_ text: String, passwordFile: String? = nil, readOnly: Bool = false) async throws -> any Store {
        do {
            if PostgresLocation.isURL(text) {
                guard let connect = connectPostgreSQL else { throw NeedsPostgreSQL() }
                let location = try PostgresLocation(text, passwordFile: passwordFile)
                return try await connect(location, localStateDirectory() + "/logs")
            }
            let store = try BelfryDatabase(path: text, readOnly: readOnly)
            if readOnly { readersKeptOpen.withLock { $0.append(store) } }
            return store
        } catch let handOff as NeedsPostgreSQL {
            throw handOff
        } catch let error as StoreError {
            throw CommandFailure(error)
        } catch {
            throw CommandFailure(PostgresLocation.redact("\(error)"))
        }
    }
}

/// SQLite stores opened for a command's reads stay open until the process exits: a command
/// reads and ends, and closing the connection first disposes of its dispatch queue, which starts
/// a thread in libdispatch only to end it (a tenth of a listing's time).
private let readersKeptOpen = Mutex<[BelfryDatabase]>([])

/// This machine's state directory (`$XDG_STATE_HOME/belfry`): attempt logs of a daemon on
/// PostgreSQL stay on the machine that ran the attempt.
public func localStateDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
    (BelfryDatabase.defaultPath(environment: environment.filter { $0.key != "BELFRY_DATABASE" }) as NSString).deletingLastPathComponent
}

/// The schedules directory: an argument, else `--schedules`, else `./schedules`.
public struct SchedulesOptions: ParsableArguments, Sendable {
    public init() {}

    @Argument(help: "The directory of definition files (*.yaml). Default: --schedules, else ./schedules.")
    var directory: String?

    @Option(help: "The directory of definition files.")
    var schedules: String?

    public var path: String { directory ?? schedules ?? "schedules" }

    /// The validated definitions, or every problem as a failure (one line each). Their warnings
    /// and notes go to `notices`, by default standard error.
    public func load(notices: (Diagnostic) -> Void = { writeToStandardError($0.description + "\n") }) throws -> Definitions {
        do {
            let definitions = try DefinitionLoader.load(directory: path)
            definitions.notices.forEach(notices)
            return definitions
        } catch {
            let count = error.diagnostics.count
            throw CommandFailure(
                lines: error.diagnostics.map(\.description),
                summary: "\(count) problem\(count == 1 ? "" : "s") in \(path); nothing was changed", exitCode: 1)
        }
    }

    /// Deploys the directory (all or nothing). Files whose bytes are exactly those deployed last
    /// are not read again: a restart with 100,000 unchanged triggers skips parsing them.
    public func deploy(
        to store: any Store, owner: String,
        notices: (Diagnostic) -> Void = { writeToStandardError($0.description + "\n") }
    ) async throws -> DeploySummary {
        do {
            if let fingerprints = DefinitionLoader.fingerprints(directory: path),
                let summary = try await store.deployUnchanged(fingerprints: fingerprints, owner: owner, now: Date())
            {
                return summary
            }
            let definitions = try load(notices: notices)
            return try await store.deploy(definitions, owner: owner, now: Date())
        } catch let failure as CommandFailure {
            throw failure
        } catch {
            throw CommandFailure("deploy failed, nothing was changed: \(error)")
        }
    }
}

/// The user's name, for `owner` and `updated_by`.
public func currentUser() -> String {
    if let user = getenv("USER").map({ String(cString: $0) }), !user.isEmpty { return user }
    if let entry = getpwuid(getuid()), let name = entry.pointee.pw_name { return String(cString: name) }
    return "uid \(getuid())"
}

/// Writes a line to standard output, as `print` does (the same buffer) without its dynamic
/// casts: each is a scan of the program's protocol conformances the first time, a noticeable
/// part of a short command's run.
func printLine(_ line: String) {
    // `puts` and `putchar` name no C global (Swift 6 refuses `stdout`); `puts` ends at a NUL.
    if !line.utf8.contains(0) {
        puts(line)
    } else {
        for byte in line.utf8 { putchar(Int32(byte)) }
        putchar(10)
    }
}

/// Prints an Encodable as pretty JSON on stdout.
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    var json = try encoder.encode(value)
    json.append(UInt8(ascii: "\n"))
    json.withUnsafeBytes(writeToStandardOutput)
}
