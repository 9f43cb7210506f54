import BelfryConfig
@testable import BelfryPostgres
import BelfrySchedule
@testable import BelfryStore
import BelfryTesting
import Foundation
import Testing

/// Several daemons on one PostgreSQL database, through the store as the daemons use it.
@Suite("PostgreSQL cluster", .enabled(if: TestPostgres.url != nil, Comment(rawValue: TestPostgres.skipReason)))
struct ClusterTests {
    static let everySecond = """
        tasks:
          - name: tick
            command: ["/bin/true"]
            kill_grace: 2s
            triggers:
              - { name: each_second, cron: "* * * * * *" }
        """

    /// A fresh database with `yaml` deployed, and `count` nodes joined to it.
    static func cluster(_ count: Int, yaml: String = everySecond, lease: Duration = .seconds(5)) async throws -> (url: String, nodes: [PostgresStore]) {
        let url = try TestPostgres.freshDatabase()
        var nodes: [PostgresStore] = []
        for index in 0..<count {
            let node = try await PostgresStore.connect(PostgresLocation(url), logDirectory: NSTemporaryDirectory() + "belfry-cluster-logs")
            try await node.join(name: "node\(index + 1)", lease: lease)
            nodes.append(node)
        }
        _ = try await nodes[0].deploy(definitions(yaml), owner: "test", now: Date())
        return (url, nodes)
    }

    static func claims(_ trigger: ScheduledTrigger, slots: ClosedRange<Int64>) -> [SlotClaim] {
        [SlotClaim(trigger: trigger, outcomes: slots.map { (Instant(secondsSinceEpoch: $0), .run(.scheduled)) })]
    }

    @Test("three nodes claiming the same 200 slots at once: each slot is one run, launched by exactly one node")
    func concurrentClaims() async throws {
        let (url, nodes) = try await Self.cluster(3)
        let trigger = try #require(try await nodes[0].activeTriggers().first)
        let launched = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for node in nodes {
                group.addTask {
                    var slots: [Int64] = []
                    for start in stride(from: Int64(1_800_000_000), to: 1_800_000_200, by: 10) {
                        let launches = try await node.claimSlots(Self.claims(trigger, slots: start...(start + 9)),
                                                                 evaluatedThrough: Instant(secondsSinceEpoch: start + 9), at: Date())
                        slots += launches[0].map(\.slot.secondsSinceEpoch)
                    }
                    return slots
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(launched.count == 200)
        #expect(Set(launched).count == 200, "no slot launched twice")
        #expect(try TestPostgres.sql(url, "SELECT count(*), count(DISTINCT slot) FROM run") == "200|200")
    }

    @Test("a node whose lease expired claims nothing: its claim is refused in the database's clock")
    func expiredLeaseClaims() async throws {
        let (url, nodes) = try await Self.cluster(1)
        let trigger = try #require(try await nodes[0].activeTriggers().first)
        _ = try TestPostgres.sql(url, "UPDATE node SET lease_until = now() - interval '1 second'")
        await #expect(throws: StoreError.leaseLost) {
            try await nodes[0].claimSlots(Self.claims(trigger, slots: 1_800_000_000...1_800_000_001),
                                          evaluatedThrough: Instant(secondsSinceEpoch: 1_800_000_001), at: Date())
        }
        #expect(try await nodes[0].renewLease() == nil, "an expired lease is not renewed: the node must join again")
        #expect(try TestPostgres.sql(url, "SELECT count(*) FROM run") == "0")
    }

    @Test("a lost node's running run is taken over only after lease expiry + kill_grace; the lost node's later writes are refused")
    func takeOver() async throws {
        let (url, nodes) = try await Self.cluster(2)
        let (lost, survivor) = (nodes[0], nodes[1])
        let trigger = try #require(try await lost.activeTriggers().first)
        let launch = try #require(try await lost.claimSlots(Self.claims(trigger, slots: 1_800_000_000...1_800_000_000),
                                                            evaluatedThrough: Instant(secondsSinceEpoch: 1_800_000_000), at: Date())[0].first)
        try await lost.startAttempt(run: launch.runID, number: 1, pid: 4242, logPath: nil, at: Date())

        // Expired one second ago: within kill_grace (2 s), the lost node may still be taking its processes down.
        _ = try TestPostgres.sql(url, "UPDATE node SET lease_until = now() - interval '1 second' WHERE name = 'node1'")
        var taken = try await survivor.takeOverLostNodes(at: Date())
        #expect(taken.runs.isEmpty && taken.nodes.isEmpty)

        _ = try TestPostgres.sql(url, "UPDATE node SET lease_until = now() - interval '3 seconds' WHERE name = 'node1'")
        taken = try await survivor.takeOverLostNodes(at: Date())
        #expect(taken.nodes == ["node1"])
        #expect(taken.runs.map(\.id) == [launch.runID])
        #expect(taken.runs.first?.orphanPID == 4242, "same host: the survivor takes the orphan's group down")
        let details = try #require(try await survivor.run(id: launch.runID))
        #expect(details.run.state == .queued && details.run.reason?.contains("node node1 lost") == true)
        #expect(details.attempts.first?.finishedAt != nil, "the interrupted attempt is closed")

        await #expect(throws: StoreError.notOwner(run: launch.runID, write: "the end of attempt 1")) {
            try await lost.finishAttempt(run: launch.runID, number: 1, exitCode: 0, signal: nil, timedOut: false, outputTail: Data(), at: Date())
        }
        await #expect(throws: StoreError.self) {
            try await lost.finishRun(launch.runID, state: .succeeded, reason: nil, exitCode: 0, commandUsed: "primary", at: Date())
        }
        try await survivor.startAttempt(run: launch.runID, number: 2, pid: nil, logPath: nil, at: Date())
        try await survivor.finishRun(launch.runID, state: .succeeded, reason: nil, exitCode: 0, commandUsed: "primary", at: Date())
        let finished = try #require(try await survivor.run(id: launch.runID))
        #expect(finished.run.state == .succeeded && finished.run.node == "node2")
        let figures = try #require(try await survivor.statistics(task: nil, since: nil).first)
        #expect(figures.runs == 1 && figures.successRate == 1 && figures.meanAttempts == 2 && figures.p50Duration != nil)
        #expect(try await survivor.nodes().map(\.name) == ["node2"], "the lost node is gone once nothing is left to take over")
    }

    @Test("three processes connecting to a new database at once apply each migration once")
    func concurrentMigrations() async throws {
        let url = try TestPostgres.freshDatabase()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<3 {
                group.addTask { _ = try await PostgresStore.connect(PostgresLocation(url), logDirectory: NSTemporaryDirectory()) }
            }
            try await group.waitForAll()
        }
        #expect(try TestPostgres.sql(url, "SELECT count(*), count(DISTINCT name) FROM belfry_migration") == "\(PostgresStore.migrations.count)|\(PostgresStore.migrations.count)")
    }

    @Test("overlap replace: a new run asks the owner of the trigger's running run, on another node, to cancel it")
    func replaceAcrossNodes() async throws {
        let yaml = Self.everySecond.replacingOccurrences(of: "kill_grace: 2s", with: "kill_grace: 2s\n    overlap: replace")
        let (_, nodes) = try await Self.cluster(2, yaml: yaml)
        let trigger = try #require(try await nodes[0].activeTriggers().first)
        let first = try #require(try await nodes[0].claimSlots(Self.claims(trigger, slots: 1_800_000_000...1_800_000_000),
                                                               evaluatedThrough: Instant(secondsSinceEpoch: 1_800_000_000), at: Date())[0].first)
        try await nodes[0].startAttempt(run: first.runID, number: 1, pid: nil, logPath: nil, at: Date())
        #expect(try await nodes[0].cancelRequests().isEmpty)
        _ = try await nodes[1].claimSlots(Self.claims(trigger, slots: 1_800_000_001...1_800_000_001),
                                          evaluatedThrough: Instant(secondsSinceEpoch: 1_800_000_001), at: Date())
        #expect(try await nodes[0].cancelRequests() == [first.runID])
        #expect(try await nodes[1].cancelRequests().isEmpty)
    }

    @Test("a database URL's password is in no error, no listing and no job's environment; belfry step works without it")
    func password() async throws {
        let secret = "s3cret-\(UUID().uuidString.prefix(6))"
        let withPassword = try TestPostgres.passwordRole(try TestPostgres.freshDatabase(), password: secret)
        var components = URLComponents(string: withPassword)!
        let directory = try TemporaryDirectory()
        try directory.write("schedules/env.yaml", """
            tasks:
              - name: dump
                command: { shell: 'env > "$OUT"; \(BelfryCommand.executable.path) step fetch -- echo fetched-$BELFRY_ATTEMPT; test $BELFRY_ATTEMPT = 2' }
                env: { OUT: "\(directory.path)/environment" }
                retries: { count: 1, backoff: { initial: 0s } }
            """)
        let environment = ["PGPASSWORD": "other-\(secret)", "XDG_STATE_HOME": directory.path + "/state"]
        var result = try BelfryCommand.run(["deploy", "--database", withPassword, directory.path + "/schedules"], environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.stdout.contains(secret) && !result.stderr.contains(secret))
        result = try BelfryCommand.run(["run", "env.dump", "--database", withPassword], environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.split(separator: "\n").filter { $0.hasPrefix("fetched") } == ["fetched-1", "fetched-1"],
                "the second attempt's step replays the first's, through the launching process: \(result.stdout) \(result.stderr)")
        let dumped = try String(contentsOfFile: directory.path + "/environment", encoding: .utf8)
        #expect(!dumped.contains(secret), "no job sees the password")
        #expect(dumped.contains("BELFRY_DATABASE=postgresql://"), "jobs still know which database runs them")
        // The job's own route to the database is closed: it has no password.
        let direct = try BelfryCommand.run(["step", "again", "--", "/bin/echo", "hi"], environment: [
            "BELFRY_RUN_ID": "1", "BELFRY_DATABASE": try #require(dumped.split(separator: "\n").first { $0.hasPrefix("BELFRY_DATABASE=") }).dropFirst(16).description,
            "XDG_STATE_HOME": directory.path + "/state",
        ])
        #expect(direct.status != 0 && direct.stderr.contains("password"), "\(direct.stderr)")
        // A wrong port: the error names the database without the password.
        components.port = 1
        result = try BelfryCommand.run(["runs", "--database", components.string!], environment: environment)
        #expect(result.status != 0 && result.stderr.contains("cannot use the database postgresql://"))
        #expect(!result.stderr.contains(secret))
    }

    @Test("copy-store moves a SQLite store to PostgreSQL and back; every listing's --json is the same on both; a non-empty target is refused")
    func copyStore() throws {
        let directory = try TemporaryDirectory()
        try directory.write("schedules/ops.yaml", """
            tasks:
              - name: job
                command: { shell: 'echo hello; exit $((RANDOM % 2))' }
                retries: { count: 1, backoff: { initial: 1ms } }
                triggers:
                  - { name: hourly, cron: "0 * * * *", timezone: America/New_York }
                  - { name: rate, every: 10m, auto_activate: false }
            """)
        let sqlite = directory.path + "/a.sqlite"
        let postgres = try TestPostgres.freshDatabase()
        let environment = ["XDG_STATE_HOME": directory.path + "/state"]
        func belfry(_ arguments: String...) throws -> BelfryCommand.Result { try BelfryCommand.run(arguments, environment: environment) }
        #expect(try belfry("deploy", "--database", sqlite, directory.path + "/schedules").status == 0)
        for _ in 0..<3 { _ = try belfry("run", "ops.job", "--database", sqlite) }
        #expect(try belfry("trigger", "activate", "ops.job", "rate", "--database", sqlite, "--by", "carol").status == 0)
        let copied = try belfry("copy-store", "--from", sqlite, "--to", postgres)
        #expect(copied.status == 0, "\(copied.stderr)")
        for listing in [["trigger", "list", "--json"], ["runs", "--json"], ["runs", "show", "2", "--json"], ["stats", "--json"],
                        ["trigger", "show", "ops.job", "hourly", "--json"]] {
            let a = try BelfryCommand.run(listing + ["--database", sqlite], environment: environment)
            let b = try BelfryCommand.run(listing + ["--database", postgres], environment: environment)
            #expect(a.status == 0 && a.stdout == b.stdout, "\(listing.joined(separator: " ")) differs")
        }
        let refused = try belfry("copy-store", "--from", sqlite, "--to", postgres)
        #expect(refused.status != 0 && refused.stderr.contains("is not empty"))
        let back = directory.path + "/b.sqlite"
        #expect(try belfry("copy-store", "--from", postgres, "--to", back).status == 0)
        #expect(try belfry("runs", "--json", "--database", back).stdout == (try belfry("runs", "--json", "--database", sqlite)).stdout)
        // Ids go on from the copied ones.
        _ = try belfry("run", "ops.job", "--database", postgres)
        #expect(try belfry("runs", "--limit", "1", "--json", "--database", postgres).stdout.contains("\"id\": 4"))
    }

    @Test("PostgreSQL files a duration in the same histogram bucket as DurationHistogram, powers of two included")
    func durationBuckets() async throws {
        let url = try TestPostgres.freshDatabase()
        _ = try await PostgresStore.connect(PostgresLocation(url), logDirectory: NSTemporaryDirectory())
        var samples: [Int64] = Array(0...2000)
        for k in 0..<45 {
            let power = Int64(1) << k
            samples += [power - 1, power, power + 1]
        }
        samples += (0..<500).map { _ in Int64.random(in: 1...86_400_000) }
        let list = samples.map(String.init).joined(separator: ",")
        let rows = try TestPostgres.sql(url, """
            SELECT string_agg(ms || ' ' || (get_byte(e, 0) + get_byte(e, 1) * 256), ',' ORDER BY i)
            FROM unnest('{\(list)}'::bigint[]) WITH ORDINALITY AS x(ms, i), LATERAL (SELECT belfry_duration_entry(ms) AS e) y
            """)
        let postgres = rows.split(separator: ",").map { $0.split(separator: " ").map { Int64($0)! } }
        #expect(postgres.count == samples.count)
        let disagreements = postgres.filter { Int($0[1]) != DurationHistogram.bucket(milliseconds: $0[0]) }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(5))")
    }

    @Test("a node that rejoined and took its own old runs over refuses the writes of tasks from its old term")
    func termsAcrossRejoin() async throws {
        let (url, nodes) = try await Self.cluster(1)
        let node = nodes[0]
        let trigger = try #require(try await node.activeTriggers().first)
        let launch = try #require(try await node.claimSlots(Self.claims(trigger, slots: 1_800_000_000...1_800_000_000),
                                                            evaluatedThrough: Instant(secondsSinceEpoch: 1_800_000_000), at: Date())[0].first)
        let oldTerm = node.term
        try await StoreTerm.$current.withValue(oldTerm) {
            try await node.startAttempt(run: launch.runID, number: 1, pid: nil, logPath: nil, at: Date())
        }
        // Fenced: it joins again as a new node, and takes its old self over once that lease expired (+ kill_grace).
        try await node.join(name: "node1", lease: .seconds(5))
        #expect(node.term == oldTerm + 1)
        _ = try TestPostgres.sql(url, "UPDATE node SET lease_until = now() - interval '3 seconds' WHERE id <> (SELECT id FROM node ORDER BY started_at DESC LIMIT 1)")
        let taken = try await node.takeOverLostNodes(at: Date())
        #expect(taken.runs.map(\.id) == [launch.runID])
        await #expect(throws: StoreError.self, "the old task's write") {
            try await StoreTerm.$current.withValue(oldTerm) {
                try await node.finishRun(launch.runID, state: .cancelled, reason: "cancelled", exitCode: nil, commandUsed: nil, at: Date())
            }
        }
        try await StoreTerm.$current.withValue(node.term) {
            try await node.startAttempt(run: launch.runID, number: 2, pid: nil, logPath: nil, at: Date())
            try await node.finishRun(launch.runID, state: .succeeded, reason: nil, exitCode: 0, commandUsed: "primary", at: Date())
        }
        #expect(try await node.run(id: launch.runID)?.run.state == .succeeded)
    }

    @Test("a queue's limit holds across nodes; a place whose run ended (or whose node was lost) is free again")
    func queuesAcrossNodes() async throws {
        let (url, nodes) = try await Self.cluster(2)
        let trigger = try #require(try await nodes[0].activeTriggers().first)
        let runs = try await nodes[0].claimSlots(Self.claims(trigger, slots: 1_800_000_000...1_800_000_002),
                                                 evaluatedThrough: Instant(secondsSinceEpoch: 1_800_000_002), at: Date())[0].map(\.runID)
        #expect(try await nodes[0].enterQueue("reports", run: runs[0], limit: 2))
        #expect(try await nodes[1].enterQueue("reports", run: runs[1], limit: 2))
        #expect(try await nodes[1].enterQueue("reports", run: runs[2], limit: 2) == false, "full: one place each on two nodes")
        #expect(try await nodes[0].enterQueue("other", run: runs[2], limit: 1), "queues are counted apart")
        try await nodes[0].leaveQueue(run: runs[2])
        try await nodes[0].leaveQueue(run: runs[0])
        #expect(try await nodes[1].enterQueue("reports", run: runs[2], limit: 2))
        // A run that ended without giving its place back holds none.
        try await StoreTerm.$current.withValue(nodes[0].term) {
            try await nodes[0].finishRun(runs[2], state: .failed, reason: "x", exitCode: 1, commandUsed: nil, at: Date())
        }
        #expect(try await nodes[0].enterQueue("reports", run: runs[0], limit: 2))
        // A lost node's places are free once its lease has expired.
        #expect(try await nodes[1].enterQueue("reports", run: runs[1], limit: 2))
        #expect(try await nodes[1].enterQueue("reports", run: runs[2], limit: 2) == false)
        _ = try TestPostgres.sql(url, "UPDATE node SET lease_until = now() - interval '1 second' WHERE name = 'node1'")
        #expect(try await nodes[1].enterQueue("reports", run: runs[2], limit: 2))
    }

    @Test("runs a node claimed but never started are found again (a claim whose answer was lost)")
    func unlaunched() async throws {
        let (_, nodes) = try await Self.cluster(2)
        let trigger = try #require(try await nodes[0].activeTriggers().first)
        let launches = try await nodes[0].claimSlots(Self.claims(trigger, slots: 1_800_000_000...1_800_000_001),
                                                     evaluatedThrough: Instant(secondsSinceEpoch: 1_800_000_001), at: Date())[0]
        try await StoreTerm.$current.withValue(nodes[0].term) {
            try await nodes[0].startAttempt(run: launches[0].runID, number: 1, pid: nil, logPath: nil, at: Date())
        }
        #expect(try await nodes[0].unlaunchedRuns().map(\.id) == [launches[1].runID], "the started one is not")
        #expect(try await nodes[1].unlaunchedRuns().isEmpty, "another node's runs are not")
    }
}
