import BelfrySchedule
import BelfryStore
import Foundation
import PostgresNIO
import Synchronization

extension PostgresStore {
    /// Registers this process as a new node (a new id at every join: a node that lost its lease
    /// and comes back is somebody else) with a lease of `lease` from the database's clock.
    public func join(name: String, lease: Duration) async throws {
        let id = UUID().uuidString.lowercased()
        let leaseMilliseconds = lease.components.seconds * 1000 + lease.components.attoseconds / 1_000_000_000_000_000
        try await query("""
            INSERT INTO node (id, name, host, pid, lease_until, lease_ms)
            VALUES (\(id), \(name), \(ProcessInfo.processInfo.hostName), \(Int64(getpid())),
              now() + make_interval(secs => \(Double(leaseMilliseconds) / 1000)), \(leaseMilliseconds))
            """)
        node.withLock { state in
            let term = (state.current?.term ?? 0) + 1
            state.current = Node(id: id, name: name, term: term)
            state.ids[term] = id
        }
    }

    /// Extends the lease from the database's `now()`, only while it has not expired: an
    /// expired lease may have been taken over, and then this node owns nothing.
    public func renewLease() async throws -> NodeShare? {
        guard let me = node.withLock({ $0.current?.id }) else { return nil }
        let rows = try await query("""
            WITH renewed AS (
              UPDATE node SET lease_until = now() + make_interval(secs => lease_ms / 1000.0) WHERE id = \(me) AND lease_until > now() RETURNING id)
            SELECT (SELECT count(*) FROM node WHERE lease_until > now() AND id < \(me)),
                   (SELECT count(*) FROM node WHERE lease_until > now() AND id <> \(me)) + 1
            FROM renewed
            """)
        guard let row = rows.first else { return nil }
        let (index, count) = try row.decode((Int, Int).self)
        return NodeShare(index: index, count: count)
    }

    /// Fails the transaction unless this node's lease is live (a claim must not be made by a
    /// node that may have been taken over). The CLI, which claims nothing, has no lease.
    func checkLease(_ connection: PostgresConnection) async throws {
        guard let me = node.withLock({ $0.current?.id }) else { return }
        let rows = try await connection.query("SELECT id FROM node WHERE id = \(me) AND lease_until > now() FOR SHARE", logger: logger).collect()
        if rows.isEmpty { throw StoreError.leaseLost }
    }

    /// Takes over nodes whose lease expired, one survivor per lost node (`FOR UPDATE SKIP
    /// LOCKED`): each of its queued runs at once (no process of theirs can be alive: a process
    /// starts only after its attempt is recorded, which makes the run `running`), each running
    /// one once its task's `kill_grace` has passed since the lease expired (the lost node, if
    /// it is alive, has taken its process group down by then). Each is recorded interrupted
    /// ("node NAME lost") and becomes this node's to resume as a system retry, or failed past
    /// `maxSystemRetries`. A lost node with nothing left to take over is removed.
    public func takeOverLostNodes(at: Date) async throws -> (runs: [InterruptedRun], nodes: [String]) {
        guard let me = node.withLock({ $0.current?.id }) else { return ([], []) }
        let maxSystemRetries = 3
        let now = milliseconds(at)
        let host = ProcessInfo.processInfo.hostName
        return try await transaction { connection in
            try await self.checkLease(connection)
            var lost: [(id: String, name: String, host: String)] = []
            for try await row in try await connection.query("""
                SELECT id, name, host FROM node WHERE lease_until < now() AND id <> \(me) ORDER BY lease_until FOR UPDATE SKIP LOCKED
                """, logger: self.logger).decode((String, String, String).self) { lost.append(row) }
            var resumable: [InterruptedRun] = []
            var names: [String] = []
            for node in lost {
                let due = try await connection.query("""
                    SELECT r.id, r.task, r."trigger", r.slot, r.origin, r.attempts, r.system_retries,
                      (SELECT pid FROM attempt a WHERE a.run_id = r.id AND a.finished_at IS NULL ORDER BY number DESC LIMIT 1)
                    FROM run r LEFT JOIN task t ON t.name = r.task, node n
                    WHERE n.id = \(node.id) AND r.node_id = n.id AND r.state IN ('queued', 'running')
                      AND (r.state = 'queued' OR now() >= n.lease_until + make_interval(secs =>
                        coalesce((convert_from(t.definition, 'UTF8')::jsonb ->> 'killGraceMilliseconds')::bigint, 10000) / 1000.0))
                    ORDER BY r.id FOR UPDATE OF r
                    """, logger: self.logger).collect()
                for row in due {
                    let r = try row.decode((Int64, String, String?, Int64?, String, Int, Int, Int64?).self)
                    try await connection.query(
                        "UPDATE attempt SET finished_at = \(now) WHERE run_id = \(r.0) AND finished_at IS NULL", logger: self.logger)
                    guard let trigger = r.2, let slot = r.3, r.6 < maxSystemRetries else {
                        let finished = try await connection.query("""
                            UPDATE run SET state = 'failed', finished_at = \(now), node_id = NULL,
                              reason = \("interrupted \(r.6 + 1) times (node \(node.name) lost)")
                            WHERE id = \(r.0) RETURNING task, queued_at, attempts, finished_at - started_at
                            """, logger: self.logger).collect()
                        if let row = finished.first {
                            let (task, queuedAt, attempts, duration) = try row.decode((String, Int64, Int, Int64?).self)
                            var figures = RunFigures()
                            figures.add(task: task, queuedAt: queuedAt, state: .failed, attempts: attempts, duration: duration)
                            try await Self.write(figures, connection, logger: self.logger)
                        }
                        continue
                    }
                    try await connection.query("""
                        UPDATE run SET state = 'queued', system_retries = system_retries + 1, node_id = \(me), cancel_requested = false,
                          reason = \("interrupted: node \(node.name) lost; resumed")
                        WHERE id = \(r.0)
                        """, logger: self.logger)
                    resumable.append(InterruptedRun(
                        id: r.0, task: r.1, trigger: trigger, slot: Instant(secondsSinceEpoch: slot), origin: RunOrigin(rawValue: r.4) ?? .scheduled,
                        attempts: r.5, orphanPID: node.host == host ? r.7.map { Int32($0) } : nil, onThisHost: node.host == host))
                }
                let left = try await connection.query("""
                    SELECT count(*) FROM run WHERE node_id = \(node.id) AND state IN ('queued', 'running')
                    """, logger: self.logger).collect()
                if try left.first?.decode(Int.self) == 0 {
                    try await connection.query("DELETE FROM node WHERE id = \(node.id)", logger: self.logger)
                    names.append(node.name)
                }
            }
            return (resumable, names)
        }
    }

    public func requestCancel(run id: Int64) async throws -> Bool {
        try await !query("UPDATE run SET cancel_requested = true WHERE id = \(id) AND state IN ('queued', 'running') RETURNING id").isEmpty
    }

    public func leave() async throws {
        guard let me = node.withLock({ $0.current?.id }) else { return }
        try await query("UPDATE node SET lease_until = now() WHERE id = \(me) AND lease_until > now()")
    }

    public func unlaunchedRuns() async throws -> [InterruptedRun] {
        guard let me = node.withLock({ $0.current?.id }) else { return [] }
        return try await query("""
            SELECT id, task, "trigger", slot, origin FROM run
            WHERE node_id = \(me) AND state = 'queued' AND attempts = 0 AND "trigger" IS NOT NULL AND slot IS NOT NULL ORDER BY id
            """).map { row in
            let r = try row.decode((Int64, String, String, Int64, String).self)
            return InterruptedRun(id: r.0, task: r.1, trigger: r.2, slot: Instant(secondsSinceEpoch: r.3), origin: RunOrigin(rawValue: r.4) ?? .scheduled,
                                  attempts: 0, orphanPID: nil, onThisHost: false)
        }
    }

    public func nodes() async throws -> [NodeRecord] {
        try await query("""
            SELECT n.id, n.name, n.host, n.pid, (extract(epoch FROM n.started_at) * 1000)::bigint, (extract(epoch FROM n.lease_until) * 1000)::bigint,
              (SELECT count(*) FROM run r WHERE r.node_id = n.id AND r.state = 'running')
            FROM node n ORDER BY n.started_at, n.id
            """).map { row in
            let r = try row.decode((String, String, String, Int64, Int64, Int64, Int).self)
            return NodeRecord(id: r.0, name: r.1, host: r.2, pid: Int32(r.3), startedAt: date(r.4), leaseUntil: date(r.5), running: r.6)
        }
    }

    /// Counts the queue's places held by runs still queued or running on a node whose lease is
    /// live (or by the CLI), under a lock per queue. A lost node's runs free their places when
    /// its lease expires: by then its attempts have been taken down (fencing, the attempt
    /// guard), and whoever takes the runs over queues them again.
    public func enterQueue(_ queue: String, run: Int64, limit: Int) async throws -> Bool {
        try await admissions.submit(queue, (run, limit)) { batch in
            let admitted = try await self.admit(batch.map(\.run), to: queue, limit: batch.last!.limit)
            return batch.map { admitted.contains($0.run) }
        }
    }

    /// Gives places in `queue` to as many of `runs` as its limit leaves room for, in their
    /// order, in one statement under the queue's lock (`belfry_admit`); the runs admitted.
    private func admit(_ runs: [Int64], to queue: String, limit: Int) async throws -> Set<Int64> {
        let rows = try await query("SELECT belfry_admit(\(queue), \(runs), \(Int64(limit)))", idempotent: true)
        return Set(try rows.map { try $0.decode(Int64.self) })
    }

    public func leaveQueue(run: Int64) async throws {
        _ = try await departures.submit("leave", run) { runs in
            try await self.query("DELETE FROM queue_place WHERE run_id = ANY(\(runs))", idempotent: true)
            return runs.map { _ in () }
        }
    }

    public func cancelRequests() async throws -> [Int64] {
        guard let me = node.withLock({ $0.current?.id }) else { return [] }
        return try await query("""
            SELECT id FROM run WHERE node_id = \(me) AND cancel_requested AND state IN ('queued', 'running')
            """).map { try $0.decode(Int64.self) }
    }
}
