import BelfryStore
import Foundation
import Logging
import NIOSSL
import PostgresNIO
import Synchronization

/// The PostgreSQL backend of `Store`: any number of daemons, on any machines, share one
/// schedule. Each daemon is a node with a lease renewed in the database's clock; a slot is
/// claimed by inserting its run under UNIQUE (task, trigger, slot) in a transaction that checks
/// the claimant's lease; every later write about the run is made only while the writer still
/// owns it.
public final class PostgresStore: Store {
    public let location: String
    public let logDirectory: String
    let client: PostgresClient
    let logger: Logger
    private let runner: Task<Void, Never>
    /// This process's node, once it joined as a daemon (nil for the CLI), and the node id of
    /// each of its terms (one per join).
    let node = Mutex<(current: Node?, ids: [Int: String])>((nil, [:]))
    /// Queue places asked for at once, given in batches.
    let admissions = Coalescer<(run: Int64, limit: Int), Bool>()
    /// Attempt starts and their processes, recorded in batches.
    let attemptStarts = Coalescer<AttemptStart, Bool>()
    let attemptProcesses = Coalescer<(run: Int64, number: Int, pid: Int32, node: String?), Bool>()
    let attemptEnds = Coalescer<AttemptEnd, Bool>()
    let departures = Coalescer<Int64, Void>()
    let runEnds = Coalescer<RunEnd, Bool>()

    struct Node: Sendable {
        var id: String
        var name: String
        var term: Int
    }

    public var term: Int { node.withLock { $0.current?.term ?? 0 } }

    /// Connects and brings the schema up to date (under a lock: several nodes may start at once).
    /// `logDirectory` is this machine's: attempt logs stay where their process ran.
    public static func connect(_ location: PostgresLocation, logDirectory: String, logger: Logger = quietLogger) async throws -> PostgresStore {
        let store = PostgresStore(location: location, logDirectory: logDirectory, logger: logger)
        await Task.yield()  // lets the client's run() start before the first lease
        do {
            try await probe(location, logger: logger)
            try await store.migrate()
        } catch {
            throw PostgresStoreError.cannotConnect(location: location.redacted, reason: PostgresStoreError.reason(error))
        }
        return store
    }

    /// libpq's `sslmode` as TLS settings: nil for none; `prefer` and `require` do not verify
    /// the server's certificate (as libpq), `verify-ca` checks the chain, `verify-full` the name too.
    private static func tls(_ mode: PostgresLocation.SSLMode) -> (required: Bool, context: TLSConfiguration)? {
        var context = TLSConfiguration.makeClientConfiguration()
        switch mode {
        case .disable, .allow: return nil
        case .prefer, .require: context.certificateVerification = .none
        case .verifyCA: context.certificateVerification = .noHostnameVerification
        case .verifyFull: context.certificateVerification = .fullVerification
        }
        return (mode != .prefer, context)
    }

    /// One connection made and closed at once, for a precise error (refused, unknown host, bad
    /// password, no such database) where the pool would keep retrying.
    private static func probe(_ location: PostgresLocation, logger: Logger) async throws {
        var configuration: PostgresConnection.Configuration
        if let socket = location.socketDirectory {
            configuration = .init(unixSocketPath: "\(socket)/.s.PGSQL.\(location.port)", username: location.user,
                                  password: location.password, database: location.database)
        } else {
            var tls = PostgresConnection.Configuration.TLS.disable
            if let settings = Self.tls(location.sslMode) {
                let context = try NIOSSLContext(configuration: settings.context)
                tls = settings.required ? .require(context) : .prefer(context)
            }
            configuration = .init(host: location.host ?? "localhost", port: location.port, username: location.user,
                                  password: location.password, database: location.database, tls: tls)
        }
        configuration.options.connectTimeout = .seconds(5)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
        try await connection.close()
    }

    private init(location: PostgresLocation, logDirectory: String, logger: Logger) {
        self.location = location.redacted
        self.logDirectory = logDirectory
        self.logger = logger
        var configuration: PostgresClient.Configuration
        let tls = Self.tls(location.sslMode)
        if let socket = location.socketDirectory {
            configuration = .init(unixSocketPath: "\(socket)/.s.PGSQL.\(location.port)", username: location.user,
                                  password: location.password, database: location.database)
        } else {
            configuration = .init(host: location.host ?? "localhost", port: location.port, username: location.user,
                                  password: location.password, database: location.database,
                                  tls: tls.map { $0.required ? .require($0.context) : .prefer($0.context) } ?? .disable)
        }
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.maximumConnections = 8
        configuration.options.additionalStartupParameters = [
            ("application_name", "belfry"),
            // A frozen node holding a transaction would block every other node's insert of the
            // same slot: the server ends such transactions.
            ("idle_in_transaction_session_timeout", "3000"),
        ]
        client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let client = self.client
        runner = Task { await client.run() }
    }

    deinit { runner.cancel() }

    /// PostgresNIO's own messages at error level only: failures reach the caller as errors,
    /// and the daemon logs those once.
    public static var quietLogger: Logger {
        var logger = Logger(label: "belfry.postgres")
        logger.logLevel = .error
        return logger
    }

    // MARK: Queries

    /// Runs one statement outside a transaction and returns its rows. A statement is not
    /// abandoned when the task that asked for it is cancelled (a daemon stopping records where
    /// its runs are): it runs in a task of its own.
    /// `idempotent`: the statement may run again when the connection was lost under it (a
    /// server restart), for up to 10 s: running it twice must do no more than running it once.
    @discardableResult
    func query(_ query: PostgresQuery, idempotent: Bool = false) async throws -> [PostgresRow] {
        try await self.query(query, idempotent: idempotent) { rows in try await rows.collect() }
    }

    /// Runs one statement, as `query` does, handing its rows to `consume` as they arrive (a
    /// large result need not be held whole).
    func query<T: Sendable>(
        _ query: PostgresQuery, idempotent: Bool = false, consume: @escaping @Sendable (PostgresRowSequence) async throws -> T
    ) async throws -> T {
        let (client, logger) = (self.client, self.logger)
        return try await Task {
            var delay = Duration.milliseconds(100)
            let deadline = ContinuousClock.now + .seconds(10)
            while true {
                do {
                    return try await consume(client.query(query, logger: logger))
                } catch let error as StoreError {
                    throw error
                } catch {
                    guard idempotent, Self.isConnectionLoss(error), ContinuousClock.now + delay < deadline else {
                        throw PostgresStoreError.failed(PostgresStoreError.reason(error))
                    }
                    try? await Task.sleep(for: delay)
                    delay = min(delay * 2, .seconds(2))
                }
            }
        }.value
    }

    /// The connection or the server went away (a restart, the network), not the statement failing.
    static func isConnectionLoss(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError else { return false }
        if [.serverClosedConnection, .connectionError, .uncleanShutdown].contains(error.code) { return true }
        guard let state = error.serverInfo?[.sqlState] else { return false }
        return state.hasPrefix("57P") || state.hasPrefix("08")  // operator intervention (shutdown), connection exceptions
    }

    /// Runs `body` in one transaction (committed when it returns, rolled back when it throws),
    /// in a task of its own, like `query`.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let (client, logger) = (self.client, self.logger)
        return try await Task { try await Self.transaction(client: client, logger: logger, body) }.value
    }

    private static func transaction<T: Sendable>(
        client: PostgresClient, logger: Logger, _ body: @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        do {
            return try await client.withTransaction(logger: logger) { connection in try await body(connection) }
        } catch let error as StoreError {
            throw error
        } catch let error as PostgresStoreError {
            throw error
        } catch let error as PostgresTransactionError {
            if let closure = error.closureError as? StoreError { throw closure }
            if let closure = error.closureError as? PostgresStoreError { throw closure }
            throw PostgresStoreError.failed(PostgresStoreError.reason(error.closureError ?? error.commitError ?? error.beginError ?? error))
        } catch {
            throw PostgresStoreError.failed(PostgresStoreError.reason(error))
        }
    }

    /// The node id writes are made as (`IS NOT DISTINCT FROM`: the CLI's own runs have none):
    /// that of the term the writing task started in, else the current one.
    var nodeID: String? {
        node.withLock { state in StoreTerm.current.flatMap { state.ids[$0] } ?? state.current?.id }
    }

    // MARK: Schema

    /// The schema, in order; a migration is never edited once released: add a new one.
    static let migrations: [(name: String, statements: [String])] = [
        ("v1: definitions, triggers, runs, attempts, steps, watermarks, nodes", [
            "CREATE TABLE environment (name text PRIMARY KEY, description text, file text NOT NULL, source_hash text NOT NULL, updated_at bigint NOT NULL)",
            "CREATE TABLE queue (name text PRIMARY KEY, concurrency bigint NOT NULL)",
            """
            CREATE TABLE task (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE,
              environment text NOT NULL REFERENCES environment(name) ON DELETE CASCADE, definition bytea NOT NULL, updated_at bigint NOT NULL)
            """,
            """
            CREATE TABLE "trigger" (id bigserial PRIMARY KEY, task_id bigint NOT NULL REFERENCES task(id) ON DELETE CASCADE, name text NOT NULL,
              kind text NOT NULL, schedule text NOT NULL, timezone text NOT NULL, dst text, interval_seconds bigint, start_time bigint,
              definition bytea NOT NULL, active boolean NOT NULL, activated_at bigint, owner text, updated_by text, updated_at bigint NOT NULL,
              UNIQUE (task_id, name))
            """,
            """
            CREATE TABLE node (id text PRIMARY KEY, name text NOT NULL, host text NOT NULL, pid bigint NOT NULL,
              started_at timestamptz NOT NULL DEFAULT now(), lease_until timestamptz NOT NULL, lease_ms bigint NOT NULL)
            """,
            """
            CREATE TABLE run (id bigserial PRIMARY KEY, task text NOT NULL, "trigger" text, slot bigint, origin text NOT NULL, state text NOT NULL,
              reason text, attempts bigint NOT NULL DEFAULT 0, system_retries bigint NOT NULL DEFAULT 0, exit_code bigint,
              queued_at bigint NOT NULL, started_at bigint, finished_at bigint, command_used text, inputs text,
              node_id text,                      -- the daemon that owns it while queued or running; NULL for the CLI's runs
              node_name text,                    -- the node that started its last attempt
              cancel_requested boolean NOT NULL DEFAULT false,
              UNIQUE (task, "trigger", slot))
            """,
            #"CREATE INDEX run_by_trigger ON run (task, "trigger", id)"#,
            "CREATE INDEX run_by_state ON run (state) WHERE state IN ('queued', 'running')",
            "CREATE INDEX run_by_node ON run (node_id) WHERE state IN ('queued', 'running')",
            "CREATE INDEX run_by_queued ON run (queued_at)",
            """
            CREATE TABLE attempt (run_id bigint NOT NULL REFERENCES run(id) ON DELETE CASCADE, number bigint NOT NULL,
              started_at bigint NOT NULL, finished_at bigint, pid bigint, exit_code bigint, signal bigint, timed_out boolean NOT NULL DEFAULT false,
              output_tail bytea, log_path text, node_name text, PRIMARY KEY (run_id, number))
            """,
            """
            CREATE TABLE step (run_id bigint NOT NULL REFERENCES run(id) ON DELETE CASCADE, name text NOT NULL, exit_code bigint NOT NULL,
              stdout bytea, finished_at bigint NOT NULL, PRIMARY KEY (run_id, name))
            """,
            #"CREATE TABLE watermark (trigger_id bigint PRIMARY KEY REFERENCES "trigger"(id) ON DELETE CASCADE, last_slot bigint NOT NULL)"#,
            "CREATE TABLE circuit_breaker (task text PRIMARY KEY, state text NOT NULL, consecutive_failures bigint NOT NULL, opened_at bigint)",
            """
            CREATE TABLE deploy (id bigserial PRIMARY KEY, owner text NOT NULL, deployed_at bigint NOT NULL, added bigint NOT NULL,
              changed bigint NOT NULL, deleted bigint NOT NULL, unchanged bigint NOT NULL)
            """,
            """
            CREATE TABLE run_stats (task text NOT NULL, hour bigint NOT NULL, runs bigint NOT NULL, succeeded bigint NOT NULL,
              attempts bigint NOT NULL, retried bigint NOT NULL, durations bytea NOT NULL, PRIMARY KEY (task, hour))
            """,
            // A run's duration as one entry of a DurationHistogram (UInt16 bucket, UInt32 count 1,
            // little-endian): the bucket as DurationHistogram.bucket(milliseconds:) computes it
            // (16 per doubling; numeric log, exact at powers of two). A finished run appends its
            // entry to its hour's figures in the statement that finishes it; pruning compacts them.
            """
            CREATE FUNCTION belfry_duration_entry(ms bigint) RETURNS bytea IMMUTABLE LANGUAGE sql AS $$
              SELECT set_byte(set_byte('\\x000001000000'::bytea, 0, b % 256), 1, b / 256)
              FROM (SELECT CASE WHEN ms < 1 THEN 0 ELSE floor(log(2::numeric, ms::numeric) * 16)::integer + 1 END AS b) x
            $$
            """,
            // Bumped by every change of what is deployed or active: nodes poll it every second.
            "CREATE TABLE definitions_version (id boolean PRIMARY KEY DEFAULT true CHECK (id), version bigint NOT NULL)",
            "INSERT INTO definitions_version (version) VALUES (0)",
        ]),
        ("v2: places in queues, across nodes", [
            "CREATE TABLE queue_place (run_id bigint PRIMARY KEY REFERENCES run(id) ON DELETE CASCADE, queue text NOT NULL)",
            "CREATE INDEX queue_place_by_queue ON queue_place (queue)",
        ]),
        // Admission in one statement: the queue's lock is held for the statement only, never
        // across round trips (a node cut off in the middle of a transaction held it until the
        // server ended its session, and every node's runs of that queue waited).
        ("v3: queue admission in one statement", [
            """
            CREATE FUNCTION belfry_admit(q text, runs bigint[], queue_limit bigint) RETURNS SETOF bigint VOLATILE LANGUAGE plpgsql AS $$
            DECLARE
              held bigint;
            BEGIN
              PERFORM pg_advisory_xact_lock(hashtext('belfry queue ' || q));
              -- A new snapshot after the lock (read committed): the places given by the last holder count.
              SELECT count(*) INTO held FROM queue_place p JOIN run r ON r.id = p.run_id LEFT JOIN node n ON n.id = r.node_id
              WHERE p.queue = q AND p.run_id <> ALL(runs) AND r.state IN ('queued', 'running')
                AND (r.node_id IS NULL OR n.lease_until > now());
              RETURN QUERY
                INSERT INTO queue_place (run_id, queue)
                SELECT u.id, q FROM unnest(runs) WITH ORDINALITY AS u(id, position) ORDER BY u.position LIMIT greatest(0, queue_limit - held)
                ON CONFLICT (run_id) DO UPDATE SET queue = excluded.queue
                RETURNING queue_place.run_id;
            END
            $$
            """,
        ]),
        // What the scheduler reads of each trigger's definition, parsed once when it is written:
        // parsing 100,000 definitions' JSON took the server 0.6 s at every node's start.
        ("v4: trigger policies as a column", [
            """
            CREATE FUNCTION belfry_trigger_policy(definition bytea) RETURNS jsonb IMMUTABLE LANGUAGE sql AS $$
              SELECT jsonb_build_object('catch_up', j -> 'catchUp' ->> 'mode', 'catch_up_limit', j -> 'catchUp' -> 'limit',
                'starting_deadline', j -> 'startingDeadlineMilliseconds', 'overlap', j ->> 'overlap')
              FROM (SELECT convert_from(definition, 'UTF8')::jsonb AS j) x
            $$
            """,
            #"ALTER TABLE "trigger" ADD COLUMN policy jsonb GENERATED ALWAYS AS (belfry_trigger_policy(definition)) STORED"#,
        ]),
    ]

    /// Applies the migrations not applied yet, under a transaction-scoped advisory lock: three
    /// nodes starting at once apply each migration once.
    private func migrate() async throws {
        try await transaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: self.logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS belfry_migration (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())", logger: self.logger)
            var applied = Set<String>()
            for try await name in try await connection.query("SELECT name FROM belfry_migration", logger: self.logger).decode(String.self) {
                applied.insert(name)
            }
            for migration in Self.migrations where !applied.contains(migration.name) {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                }
                try await connection.query("INSERT INTO belfry_migration (name) VALUES (\(migration.name))", logger: self.logger)
            }
        }
    }

    private static let migrationLock: Int64 = 0x62656c667279  // "belfry"
}

/// A PostgreSQL failure, said without secrets.
public enum PostgresStoreError: Error, CustomStringConvertible, Sendable {
    case cannotConnect(location: String, reason: String)
    case failed(String)

    public var description: String {
        switch self {
        case .cannotConnect(let location, let reason): "cannot use the database \(location): \(reason)"
        case .failed(let reason): "database error: \(reason)"
        }
    }

    /// What the server said (its message and SQLSTATE), or how the connection failed.
    static func reason(_ error: any Error) -> String {
        if let error = error as? PostgresStoreError {
            switch error {
            case .failed(let reason), .cannotConnect(_, let reason): return reason
            }
        }
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                return message + (error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? "")
            }
            if let underlying = error.underlying, !(underlying is PSQLError) {  // a nested PSQLError describes itself as vaguely
                return "\(error.code): \(PostgresLocation.redact(String(describing: underlying)))"
            }
            if error.code == .authMechanismRequiresPassword {
                return "the server asks for a password and none was given (the URL, $PGPASSWORD, --database-password-file or $CREDENTIALS_DIRECTORY/database-password)"
            }
            return "\(error.code)"
        }
        return PostgresLocation.redact(String(describing: error))
    }
}
