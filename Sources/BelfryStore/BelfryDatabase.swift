import Foundation
import GRDB
import Synchronization

/// Why the database could not be used.
public enum StoreError: Error, Equatable, Sendable, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    case unknownTrigger(task: String, trigger: String, suggestions: [String])
    case unknownTask(task: String, suggestions: [String])
    case unknownRun(Int64)
    /// Another daemon holds the store (SQLite: one daemon per file).
    case daemonRunning(location: String, holder: String)
    /// A write about a run this process does not own (any more): refused, not applied.
    case notOwner(run: Int64, write: String)
    /// This daemon's lease expired: it owns nothing and must join again.
    case leaseLost
    /// A stored row this version cannot read.
    case unreadable(String)
    /// A copy's target already holds definitions or runs.
    case notEmpty(location: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            return "cannot open the database \(path): \(reason)"
        case .unknownTrigger(let task, let trigger, let suggestions):
            let hint = suggestions.isEmpty ? "; `belfry trigger list` shows them all" : "; did you mean \(suggestions.joined(separator: ", "))?"
            return "no trigger \"\(trigger)\" on task \"\(task)\"\(hint)"
        case .unknownTask(let task, let suggestions):
            let hint = suggestions.isEmpty ? "; `belfry deploy` deploys tasks, `belfry trigger list` shows them" : "; did you mean \(suggestions.joined(separator: ", "))?"
            return "no deployed task \"\(task)\"\(hint)"
        case .unknownRun(let id):
            return "no run \(id); `belfry runs` lists them"
        case .daemonRunning(let location, let holder):
            return "another belfry daemon (\(holder)) is running on \(location)"
        case .notOwner(let run, let write):
            return "refused to record \(write) of run \(run): this daemon no longer owns it (its lease expired and another node took it over)"
        case .notEmpty(let location):
            return "\(location) is not empty (it holds tasks or runs); copy-store fills only an empty store"
        case .unreadable(let what):
            return "the database holds \(what)"
        case .leaseLost:
            return "this daemon's lease expired; it claims nothing until it has joined again"
        }
    }
}

/// The one SQLite database of a Belfry installation (SPEC §3): it owns the schema and its
/// migrations, and every query. WAL mode, foreign keys on, writers wait for each other.
public final class BelfryDatabase: Sendable {
    public let path: String
    /// A pool of connections (readers beside one writer) for everything that may write; one
    /// read-only connection for a command that only reads.
    let pool: any DatabaseWriter
    /// A run's writes on its way, written together (`writeTogether`).
    let runWrites = Coalescer<@Sendable (Database) throws -> Void, Result<Void, any Error>>()
    /// The daemon lock file's descriptor, once `join` took it.
    let daemonLock = Mutex<Int32?>(nil)

    /// The SQLite library linked in, as `3.40.1`.
    public static var sqliteVersion: String {
        let number = Database.sqliteLibVersionNumber
        return "\(number / 1_000_000).\(number / 1000 % 1000).\(number % 1000)"
    }

    /// The default location: `$BELFRY_DATABASE`, else `$XDG_STATE_HOME/belfry/belfry.sqlite`, else
    /// `~/.local/state/belfry/belfry.sqlite`.
    /// `environment`: the variables to read, else this process's (read one by one: a dictionary
    /// of the whole environment is a noticeable part of a listing's start).
    public static func defaultPath(environment: [String: String]? = nil) -> String {
        let variable = { (name: String) -> String? in
            guard let environment else { return getenv(name).map { String(cString: $0) } }
            return environment[name]
        }
        if let path = variable("BELFRY_DATABASE"), !path.isEmpty { return path }
        let state = variable("XDG_STATE_HOME").flatMap { $0.isEmpty ? nil : $0 }
            ?? ((variable("HOME") ?? NSHomeDirectory()) as NSString).appendingPathComponent(".local/state")
        return ((state as NSString).appendingPathComponent("belfry") as NSString).appendingPathComponent("belfry.sqlite")
    }

    /// Opens (creating it, mode 0600, in a directory created 0700) and migrates the database.
    ///
    /// `readOnly`: the caller only reads. A database that exists is then opened read-only,
    /// without migrating, when its schema is current; one that this process may not write (the
    /// file, its directory or its file system is read-only) must have a current schema.
    public init(path: String, readOnly: Bool = false) throws(StoreError) {
        self.path = path
        if readOnly, FileManager.default.fileExists(atPath: path) {
            if !Self.isWritable(path) {
                pool = try Self.openReadOnly(path: path)
                return
            }
            // Writable too: read-only is quicker to open (no WAL set-up, no migration check), and
            // a schema that is not current is brought up to date below as for any command.
            if let readOnlyPool = try? Self.openReadOnly(path: path) {
                pool = readOnlyPool
                return
            }
        }
        let directory = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(
                atPath: directory.isEmpty ? "." : directory, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
        } catch {
            throw .cannotOpen(path: path, reason: "cannot create the directory \(directory): \(Self.reason(error))")
        }
        if !FileManager.default.fileExists(atPath: path) {
            let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if descriptor < 0, errno != EEXIST {
                throw .cannotOpen(path: path, reason: String(cString: strerror(errno)))
            }
            if descriptor >= 0 { close(descriptor) }
        }
        var configuration = GRDB.Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(30)
        // WAL with synchronous = NORMAL: a commit survives the process being killed, and the
        // database is never corrupted; a power loss may forget the last commits. Slot claims are
        // synced anyway (`claimSlots`). FULL costs 0.6 ms per commit on this machine, NORMAL 26 µs.
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        configuration.label = "belfry"
        do {
            pool = try Self.openMigrated(path: path, configuration: configuration)
        } catch {
            throw .cannotOpen(path: path, reason: Self.reason(error, path: path))
        }
    }

    /// Whether this process may write the database: the file and its directory (for the WAL and
    /// shared-memory files beside it).
    private static func isWritable(_ path: String) -> Bool {
        let directory = (path as NSString).deletingLastPathComponent
        return access(path, W_OK) == 0 && access(directory.isEmpty ? "." : directory, W_OK) == 0
    }

    /// A read-only pool on a database with a current schema. With no WAL file beside it (closed
    /// cleanly, or a copy) in a directory this user may not write, the file is opened as
    /// immutable: SQLite could not create the shared-memory file a WAL reader needs. A writer
    /// that starts meanwhile writes to a new WAL, not to the file, until its first checkpoint.
    /// One connection, not a pool: a pool opens a writer connection beside its reader, and a
    /// listing is one read.
    private static func openReadOnly(path: String) throws(StoreError) -> DatabaseQueue {
        var configuration = GRDB.Configuration()
        configuration.readonly = true
        configuration.label = "belfry"
        var location = path
        let directory = (path as NSString).deletingLastPathComponent
        if !FileManager.default.fileExists(atPath: path + "-wal"), access(directory.isEmpty ? "." : directory, W_OK) != 0 {
            let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
            location = "file:" + (absolute.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? absolute) + "?immutable=1"
        }
        let pool: DatabaseQueue
        let current: Bool
        do {
            pool = try DatabaseQueue(path: location, configuration: configuration)
            current = try pool.read { db in try migrator.hasCompletedMigrations(db) && !migrator.hasBeenSuperseded(db) }
        } catch {
            throw .cannotOpen(path: path, reason: "opened read-only (this user may not write it): " + Self.reason(error))
        }
        guard current else {
            throw .cannotOpen(
                path: path,
                reason: "it is read-only here and its schema is not this belfry's version; a belfry of this version that may write it (the daemon, `belfry deploy`) brings it up to date")
        }
        return pool
    }

    /// Opens the pool and brings the schema up to date, settling the races of processes that
    /// open a new database at the same moment (the daemon and a CLI command, say):
    /// - switching a new file to WAL needs it alone, and SQLite answers "database is locked" at
    ///   once, without the busy timeout, when another process has it open: wait and retry;
    /// - GRDB reads which migrations are applied before it takes the write lock, so two
    ///   processes can both try v1; the loser fails ("table ... already exists") after the winner
    ///   committed, and reading again finds nothing left to do.
    private static func openMigrated(path: String, configuration: GRDB.Configuration) throws -> DatabasePool {
        var busyRetries = 100  // 5 s in all
        var migrationRetried = false
        while true {
            do {
                let pool = try DatabasePool(path: path, configuration: configuration)
                do {
                    try migrator.migrate(pool)
                } catch let error as DatabaseError where error.resultCode == .SQLITE_ERROR && !migrationRetried {
                    migrationRetried = true
                    try migrator.migrate(pool)
                }
                return pool
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY && busyRetries > 0 {
                busyRetries -= 1
                usleep(50_000)
            }
        }
    }

    private static func reason(_ error: any Error, path: String? = nil) -> String {
        if let error = error as? DatabaseError {
            if let path, error.resultCode == .SQLITE_READONLY || error.resultCode == .SQLITE_CANTOPEN {
                // Say which: SQLite needs to write the file and, for its WAL, the directory.
                var info = statvfs()
                let directory = (path as NSString).deletingLastPathComponent
                if statvfs(directory.isEmpty ? "." : directory, &info) == 0, info.f_flag & UInt(ST_RDONLY) != 0 {
                    return "its file system is mounted read-only"
                }
                if access(path, W_OK) != 0 { return "the file is not writable by this user (\(String(cString: strerror(errno))))" }
                if access(directory.isEmpty ? "." : directory, W_OK) != 0 {
                    return "its directory is not writable by this user (SQLite writes its WAL beside the file)"
                }
            }
            switch error.resultCode {
            case .SQLITE_READONLY: return "it is read-only (check the file's and directory's permissions)"
            case .SQLITE_CANTOPEN: return "it cannot be opened (missing or unwritable directory?)"
            case .SQLITE_NOTADB: return "the file is not a SQLite database"
            case .SQLITE_FULL: return "the disk is full"
            default: return error.message ?? "\(error)"
            }
        }
        return (error as NSError).localizedDescription
    }

    /// Where attempt logs go: `logs/` beside the database file.
    public var logDirectory: String {
        ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent("logs")
    }

    /// A number that changes whenever another process commits to the database: cheap to poll
    /// (SQLite's `PRAGMA data_version` on this process's writer connection).
    public func changeCounter() throws -> Int {
        try pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA data_version") ?? 0 }
    }

    /// The schema, in order. Migrations are never edited once released: add a new one.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: definitions, triggers, runs, attempts, steps, watermarks") { db in
            try db.execute(sql: """
                CREATE TABLE environment (
                  name TEXT PRIMARY KEY,
                  description TEXT,
                  file TEXT NOT NULL,
                  source_hash TEXT NOT NULL,               -- fingerprint of the file deployed
                  updated_at INTEGER NOT NULL              -- milliseconds since the epoch, as every *_at
                );
                CREATE TABLE queue (
                  name TEXT PRIMARY KEY,
                  concurrency INTEGER NOT NULL
                );
                CREATE TABLE task (
                  id INTEGER PRIMARY KEY,
                  name TEXT NOT NULL UNIQUE,               -- ENV.TASK
                  environment TEXT NOT NULL REFERENCES environment(name) ON DELETE CASCADE,
                  definition BLOB NOT NULL,                -- TaskDefinition as JSON, without triggers
                  updated_at INTEGER NOT NULL
                );
                CREATE TABLE "trigger" (
                  id INTEGER PRIMARY KEY,
                  task_id INTEGER NOT NULL REFERENCES task(id) ON DELETE CASCADE,
                  name TEXT NOT NULL,
                  kind TEXT NOT NULL,                      -- cron | every
                  schedule TEXT NOT NULL,                  -- the expression, or the interval as text
                  timezone TEXT NOT NULL,
                  dst TEXT,                                -- cron: "skip once", "shift twice", ...
                  interval_seconds INTEGER,                -- every: the interval
                  start_time INTEGER,                      -- every: start_time, seconds
                  definition BLOB NOT NULL,                -- TriggerDefinition as JSON
                  active BOOLEAN NOT NULL,
                  activated_at INTEGER,                    -- anchor of a fixed rate without start_time
                  owner TEXT,
                  updated_by TEXT,
                  updated_at INTEGER NOT NULL,
                  UNIQUE (task_id, name)
                );
                CREATE TABLE run (
                  id INTEGER PRIMARY KEY,
                  task TEXT NOT NULL,
                  "trigger" TEXT,                          -- NULL for a manual run
                  slot INTEGER,                            -- seconds since the epoch
                  origin TEXT NOT NULL,                    -- scheduled | manual | catch-up
                  state TEXT NOT NULL,
                  reason TEXT,
                  attempts INTEGER NOT NULL DEFAULT 0,
                  system_retries INTEGER NOT NULL DEFAULT 0,
                  exit_code INTEGER,
                  queued_at INTEGER NOT NULL,
                  started_at INTEGER,
                  finished_at INTEGER,
                  command_used TEXT,
                  inputs TEXT,
                  UNIQUE (task, "trigger", slot)           -- exactly once per slot
                );
                CREATE INDEX run_by_trigger ON run (task, "trigger", id);
                CREATE INDEX run_by_state ON run (state);
                CREATE TABLE attempt (
                  run_id INTEGER NOT NULL REFERENCES run(id) ON DELETE CASCADE,
                  number INTEGER NOT NULL,
                  started_at INTEGER NOT NULL,
                  finished_at INTEGER,
                  pid INTEGER,
                  exit_code INTEGER,
                  signal INTEGER,
                  timed_out BOOLEAN NOT NULL DEFAULT 0,
                  output_tail BLOB,
                  log_path TEXT,
                  PRIMARY KEY (run_id, number)
                );
                CREATE TABLE step (
                  run_id INTEGER NOT NULL REFERENCES run(id) ON DELETE CASCADE,
                  name TEXT NOT NULL,
                  exit_code INTEGER NOT NULL,
                  stdout BLOB,
                  finished_at INTEGER NOT NULL,
                  PRIMARY KEY (run_id, name)
                );
                CREATE TABLE watermark (
                  trigger_id INTEGER PRIMARY KEY REFERENCES "trigger"(id) ON DELETE CASCADE,
                  last_slot INTEGER NOT NULL               -- the last slot evaluated, seconds
                );
                CREATE TABLE circuit_breaker (
                  task TEXT PRIMARY KEY,
                  state TEXT NOT NULL,                     -- closed | open | probing
                  consecutive_failures INTEGER NOT NULL,
                  opened_at INTEGER
                );
                CREATE TABLE deploy (
                  id INTEGER PRIMARY KEY,
                  owner TEXT NOT NULL,
                  deployed_at INTEGER NOT NULL,
                  added INTEGER NOT NULL,
                  changed INTEGER NOT NULL,
                  deleted INTEGER NOT NULL,
                  unchanged INTEGER NOT NULL
                );
                """)
        }
        migrator.registerMigration("v2: run figures per task and hour, for stats") { db in
            try db.execute(sql: """
                CREATE TABLE run_stats (
                  task TEXT NOT NULL,
                  hour INTEGER NOT NULL,                   -- of queued_at, hours since the epoch
                  runs INTEGER NOT NULL,                   -- that ran to an end
                  succeeded INTEGER NOT NULL,
                  attempts INTEGER NOT NULL,
                  retried INTEGER NOT NULL,                -- runs with more than one attempt
                  durations BLOB NOT NULL,                 -- DurationHistogram
                  PRIMARY KEY (task, hour)
                ) WITHOUT ROWID;
                CREATE INDEX run_by_queued ON run (queued_at);
                """)
            try countAllFinishedRuns(db)
        }
        return migrator
    }
}
