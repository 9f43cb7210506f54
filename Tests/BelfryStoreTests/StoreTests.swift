import BelfryConfig
import BelfrySchedule
import BelfryPostgres
@testable import BelfryStore
import BelfryTesting
import Foundation
import Testing

func definitions(_ yaml: String, file: String = "ops.yaml") throws -> Definitions {
    try DefinitionLoader.load(files: [(file, Array(yaml.utf8))])
}

let twoTriggers = """
    tasks:
      - name: job
        command: ["/bin/true"]
        triggers:
          - { name: hourly_cron, cron: "0 * * * *" }
          - { name: rate, every: 10m, auto_activate: false }
    """

/// The backends every store test runs on: SQLite always, PostgreSQL when a test server is
/// given (`BELFRY_TEST_POSTGRES_URL`).
enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres

    static var available: [Backend] { TestPostgres.url == nil ? [.sqlite] : [.sqlite, .postgres] }

    var testDescription: String { rawValue }

    /// A new, empty store, with SQLite's file and the attempt logs in `directory`.
    func open(in directory: TemporaryDirectory) async throws -> any Store {
        switch self {
        case .sqlite: try BelfryDatabase(path: directory.path + "/state/belfry.sqlite")
        case .postgres: try await PostgresStore.connect(PostgresLocation(TestPostgres.freshDatabase()), logDirectory: directory.path + "/logs")
        }
    }

    /// Another connection to the same store, as another process has.
    func reopen(_ store: any Store) async throws -> any Store {
        switch self {
        case .sqlite: try BelfryDatabase(path: store.location)
        case .postgres: try await PostgresStore.connect(PostgresLocation(store.location), logDirectory: store.logDirectory)
        }
    }
}

@Suite("Store, on each backend")
struct StoreTests {
    @Test("a new SQLite file is 0600 in a 0700 directory")
    func fileModes() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/state/belfry.sqlite"
        _ = try BelfryDatabase(path: path)
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) == 0o600)
        #expect((try FileManager.default.attributesOfItem(atPath: directory.path + "/state")[.posixPermissions] as? Int) == 0o700)
    }

    @Test("deploy adds, keeps, changes and deletes triggers; activation survives redeploys", arguments: Backend.available)
    func deployLifecycle(_ backend: Backend) async throws {
        let directory = try TemporaryDirectory()
        let store = try await backend.open(in: directory)

        var summary = try await store.deploy(definitions(twoTriggers), owner: "alice", now: Date())
        #expect(summary.added == ["ops.job hourly_cron", "ops.job rate"])
        #expect((summary.active, summary.inactive) == (1, 1))
        summary = try await store.deploy(definitions(twoTriggers), owner: "bob", now: Date())
        #expect(summary.added.isEmpty && summary.changed.isEmpty && summary.unchanged == 2)

        _ = try await store.setActive(false, task: "ops.job", name: "hourly_cron", by: "carol", now: Date())
        let changed = twoTriggers.replacingOccurrences(of: "0 * * * *", with: "30 * * * *")
            .replacingOccurrences(of: "      - { name: rate, every: 10m, auto_activate: false }\n", with: "")
            .replacingOccurrences(of: "    - { name: rate, every: 10m, auto_activate: false }", with: "")
        summary = try await store.deploy(definitions(changed + "\n      - { name: fresh, every: 1h }\n"), owner: "dave", now: Date())
        #expect(summary.changed == ["ops.job hourly_cron"])
        #expect(summary.deleted == ["ops.job rate"])
        #expect(summary.added == ["ops.job fresh"])
        let statuses = try await store.triggers(task: nil)
        #expect(statuses.map(\.trigger) == ["fresh", "hourly_cron"])
        let cron = statuses[1]
        #expect(cron.active == false, "a redeploy keeps the activation state")
        #expect(cron.owner == "dave")
        #expect(cron.schedule.text == "30 * * * *")
        #expect(try await store.definition(task: "ops.job", trigger: "hourly_cron").schedule == cron.schedule)
    }

    @Test("the scheduler reads each trigger's schedule and policies as deployed", arguments: Backend.available)
    func scheduledTriggers(_ backend: Backend) async throws {
        let directory = try TemporaryDirectory()
        let store = try await backend.open(in: directory)
        _ = try await store.deploy(definitions("""
            tasks:
              - name: job
                command: ["/bin/true"]
                overlap: forbid
                triggers:
                  - { name: plain, cron: "0 * * * *" }
                  - name: careful
                    cron: "30 2 * * *"
                    timezone: America/New_York
                    dst: { skipped: shift, repeated: twice }
                    catch_up: { policy: all, limit: 7 }
                    starting_deadline: 90s
                    overlap: replace
                  - { name: rate, every: 10m, start_time: "2026-01-01T00:00:00Z", catch_up: none }
            """), owner: "test", now: Date())
        let triggers = try await store.activeTriggers().sorted { $0.name < $1.name }
        #expect(triggers.map(\.name) == ["careful", "plain", "rate"])
        #expect(triggers.map(\.catchUp.mode) == [.all, .latest, .none])
        #expect(triggers.map(\.catchUp.limit) == [7, 100, 100])
        #expect(triggers.map(\.startingDeadlineMilliseconds) == [90_000, nil, nil])
        #expect(triggers.map(\.overlap) == [.replace, .forbid, .forbid])
        #expect(triggers[0].schedule == .cron(expression: "30 2 * * *", timezone: "America/New_York", skipped: .shift, repeated: .twice))
        #expect(triggers[2].schedule == .every(intervalSeconds: 600, startTime: Instant(secondsSinceEpoch: 1_767_225_600), timezone: "UTC"))
    }

    @Test("an unchanged file redeploys as unchanged, and a trigger deleted by hand comes back", arguments: Backend.available)
    func unchangedRedeploy(_ backend: Backend) async throws {
        let directory = try TemporaryDirectory()
        let store = try await backend.open(in: directory)
        _ = try await store.deploy(definitions(twoTriggers), owner: "alice", now: Date())
        _ = try await store.setActive(true, task: "ops.job", name: "rate", by: "bob", now: Date())
        var summary = try await store.deploy(definitions(twoTriggers), owner: "carol", now: Date())
        #expect(summary.unchanged == 2 && summary.added.isEmpty && summary.changed.isEmpty && summary.deleted.isEmpty)
        #expect((summary.active, summary.inactive) == (2, 0))
        try await store.deleteTrigger(task: "ops.job", name: "rate")
        summary = try await store.deploy(definitions(twoTriggers), owner: "dave", now: Date())
        #expect(summary.added == ["ops.job rate"] && summary.unchanged == 1)
        #expect(try await store.triggers(task: nil).map(\.trigger) == ["hourly_cron", "rate"])
    }

    @Test("activation records who and when, and re-anchors a fixed rate", arguments: Backend.available)
    func activation(_ backend: Backend) async throws {
        let directory = try TemporaryDirectory()
        let store = try await backend.open(in: directory)
        _ = try await store.deploy(definitions(twoTriggers), owner: "alice", now: Date(timeIntervalSince1970: 1_000_000))
        let at = Date(timeIntervalSince1970: 1_767_225_600.25)
        let status = try await store.setActive(true, task: "ops.job", name: "rate", by: "erin", now: at)
        #expect(status.active && status.updatedBy == "erin" && status.owner == "alice")
        #expect(status.activatedAt?.timeIntervalSince1970 == 1_767_225_600.25)
        // The first slot is one interval after activation.
        #expect(status.nextSlot(after: Instant(secondsSinceEpoch: 1_767_225_600))?.rfc3339 == "2026-01-01T00:10:00Z")
        #expect(try await store.setActive(false, task: "ops.job", name: "rate", by: "erin", now: Date()).nextSlot(after: .init(secondsSinceEpoch: 0)) == nil)
        await #expect {
            try await store.setActive(true, task: "ops.job", name: "rat", by: "erin", now: Date())
        } throws: { error in
            (error as? StoreError)?.description.contains("did you mean \"ops.job rate\"") == true
        }
    }

    @Test("a slot is recorded once; a batch with a duplicate writes nothing", arguments: Backend.available)
    func exactlyOnce(_ backend: Backend) async throws {
        let directory = try TemporaryDirectory()
        let store = try await backend.open(in: directory)
        let now = Date()
        func run(_ slot: Int64) -> RunRecord {
            RunRecord(task: "ops.job", trigger: "t", slot: Instant(secondsSinceEpoch: slot), origin: .scheduled, state: .succeeded, queuedAt: now)
        }
        try await store.insertRuns([run(60), run(120)])
        await #expect(throws: (any Error).self) { try await store.insertRuns([run(180), run(60)]) }
        #expect(try await store.runCount() == 2)
    }

    @Test("pruning keeps the newest runs per trigger and drops old ones", arguments: Backend.available)
    func pruning(_ backend: Backend) async throws {
        let directory = try TemporaryDirectory()
        let store = try await backend.open(in: directory)
        let now = Date(timeIntervalSince1970: 2_000_000_000)
        var runs: [RunRecord] = []
        for i in 0..<1200 {
            runs.append(RunRecord(task: "ops.job", trigger: "a", slot: Instant(secondsSinceEpoch: Int64(i)), origin: .scheduled,
                                  state: .succeeded, queuedAt: now.addingTimeInterval(-Double(1200 - i))))
        }
        for i in 0..<10 {
            runs.append(RunRecord(task: "ops.job", trigger: "b", slot: Instant(secondsSinceEpoch: Int64(i)), origin: .scheduled,
                                  state: .failed, queuedAt: now.addingTimeInterval(-100 * 86400)))
        }
        runs.append(RunRecord(task: "ops.job", trigger: "b", slot: Instant(secondsSinceEpoch: 99), origin: .scheduled,
                              state: .running, queuedAt: now.addingTimeInterval(-100 * 86400)))
        try await store.insertRuns(runs)
        #expect(try await store.pruneHistory(HistoryPolicy(), now: now) == 200 + 10)
        #expect(try await store.runCount() == 1001, "1000 of a, and b's running run, which is not history yet")
    }

    @Test("stats: counts exact, percentiles within 2.2 % of the exact ones, --since by the hour", arguments: Backend.available)
    func statistics(_ backend: Backend) async throws {
        let directory = try TemporaryDirectory()
        let store = try await backend.open(in: directory)
        var generator = SystemRandomNumberGenerator()
        let start = Date(timeIntervalSince1970: 1_790_000_000)
        var runs: [RunRecord] = []
        var durations: [Double] = []
        for k in 0..<3000 {
            let queued = start.addingTimeInterval(Double(k) * 10)
            let duration = Double(Int.random(in: 1...600_000, using: &generator)) / 1000
            let state: RunState = [.succeeded, .succeeded, .succeeded, .failed, .timedOut, .missed][k % 6]
            runs.append(RunRecord(
                task: "ops.job", trigger: "t", slot: Instant(secondsSinceEpoch: Int64(queued.timeIntervalSince1970)), origin: .scheduled,
                state: state, attempts: state == .missed ? 0 : 1 + k % 3, queuedAt: queued, startedAt: state == .missed ? nil : queued,
                finishedAt: queued.addingTimeInterval(duration)))
            if state != .missed { durations.append(duration) }
        }
        try await store.insertRuns(runs)
        let figures = try #require(try await store.statistics(task: nil, since: nil).first)
        #expect(figures.runs == 2500)
        #expect(abs(figures.successRate - 1500.0 / 2500) < 1e-9)
        durations.sort()
        for (p, value) in [(0.5, figures.p50Duration), (0.95, figures.p95Duration)] {
            let exact = durations[Int((p * Double(durations.count)).rounded(.up)) - 1]
            let approximate = try #require(value)
            #expect(abs(approximate - exact) / exact < 0.022, "p\(p): \(approximate) for \(exact)")
        }
        // SQLite's migration v2 computes the same figures from the runs themselves.
        if let sqlite = store as? BelfryDatabase {
            let kept = try sqlite.statistics()
            try await sqlite.pool.write { db in
                try db.execute(sql: "DELETE FROM run_stats")
                try BelfryDatabase.countAllFinishedRuns(db)
            }
            #expect(try sqlite.statistics() == kept)
        }
        // The last hour only: runs queued from its start on.
        let lastHour = Date(timeIntervalSince1970: ((start.timeIntervalSince1970 + 29_990) / 3600).rounded(.down) * 3600)
        let recent = runs.filter { $0.queuedAt >= lastHour && $0.state != .missed }.count
        #expect(try await store.statistics(task: nil, since: lastHour).first?.runs == recent)
    }

    @Test("runs that end at the same moment (one batch on PostgreSQL) are each recorded, with their figures", arguments: Backend.available)
    func concurrentEnds(_ backend: Backend) async throws {
        let directory = try TemporaryDirectory()
        let store = try await backend.open(in: directory)
        let start = Date(timeIntervalSince1970: 1_790_000_000)
        var ids: [Int64] = []
        for k in 0..<120 {
            let id = try await store.createRun(task: "ops.job\(k % 3)", trigger: nil, slot: nil, origin: .manual, inputs: nil, at: start)
            try await store.startAttempt(run: id, number: 1, pid: nil, logPath: nil, at: start)
            ids.append(id)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (k, id) in ids.enumerated() {
                group.addTask {
                    try await store.finishAttempt(run: id, number: 1, exitCode: k % 4 == 0 ? nil : Int32(k % 2), signal: k % 4 == 0 ? 9 : nil,
                                                  timedOut: false, outputTail: Data("tail \(k)".utf8), at: start.addingTimeInterval(Double(k)))
                    try await store.finishRun(id, state: k % 2 == 1 ? .failed : .succeeded, reason: k % 2 == 1 ? "exit code 1" : nil,
                                              exitCode: k % 2 == 1 ? 1 : 0, commandUsed: "primary", at: start.addingTimeInterval(Double(k)))
                }
            }
            try await group.waitForAll()
        }
        for (k, id) in ids.enumerated() {
            let (run, attempts, _) = try #require(try await store.run(id: id))
            #expect(run.state == (k % 2 == 1 ? .failed : .succeeded) && run.reason == (k % 2 == 1 ? "exit code 1" : nil))
            #expect(run.finishedAt == start.addingTimeInterval(Double(k)))
            #expect(attempts.first?.signal == (k % 4 == 0 ? 9 : nil) && attempts.first?.outputTail == Data("tail \(k)".utf8))
        }
        let figures = try await store.statistics(task: nil, since: nil)
        #expect(figures.map(\.runs) == [40, 40, 40])
        #expect(figures.map(\.successRate) == [0.5, 0.5, 0.5])
        #expect(figures.allSatisfy { $0.p95Duration.map { $0 > 100 } == true }, "each run's duration is in its task's histogram")
    }

    @Test("attempts started at the same moment (one SQLite transaction) are each recorded; one that cannot be fails alone")
    func concurrentStarts() async throws {
        let directory = try TemporaryDirectory()
        let store = try BelfryDatabase(path: directory.path + "/belfry.sqlite")
        let start = Date(timeIntervalSince1970: 1_790_000_000)
        var ids: [Int64] = []
        for k in 0..<200 {
            ids.append(try store.createRun(task: "ops.job\(k % 3)", trigger: nil, slot: nil, origin: .manual, inputs: nil, at: start))
        }
        try await store.startAttempt(run: ids[7], number: 1, pid: nil, logPath: nil, at: start)
        let failed = await withTaskGroup(of: Int64?.self) { group in
            for (k, id) in ids.enumerated() {
                group.addTask {
                    do {
                        try await store.startAttempt(run: id, number: 1, pid: Int32(k), logPath: "/logs/\(k)", at: start.addingTimeInterval(Double(k)))
                        return nil
                    } catch {
                        return id
                    }
                }
            }
            return await group.reduce(into: [Int64]()) { failed, id in if let id { failed.append(id) } }
        }
        #expect(failed == [ids[7]], "attempt 1 of that run was there already")
        for (k, id) in ids.enumerated() where k != 7 {
            let (run, attempts, _) = try #require(try store.run(id: id))
            #expect(run.state == .running && run.startedAt == start.addingTimeInterval(Double(k)))
            #expect(attempts.map(\.pid) == [Int32(k)] && attempts.map(\.logPath) == ["/logs/\(k)"])
        }
    }

    @Test("another process's deploy or activation changes the change counter", arguments: Backend.available)
    func changeCounter(_ backend: Backend) async throws {
        let directory = try TemporaryDirectory()
        let daemon = try await backend.open(in: directory)
        let cli = try await backend.reopen(daemon)
        let before = try await daemon.changeCounter()
        #expect(try await daemon.changeCounter() == before)
        _ = try await cli.deploy(definitions(twoTriggers), owner: "x", now: Date())
        let deployed = try await daemon.changeCounter()
        #expect(deployed != before)
        _ = try await cli.setActive(true, task: "ops.job", name: "rate", by: "y", now: Date())
        #expect(try await daemon.changeCounter() != deployed)
    }

    @Test("an impossible database location is a clear error")
    func badLocation() {
        #expect {
            _ = try BelfryDatabase(path: "/proc/belfry-test/db.sqlite")
        } throws: { error in
            (error as? StoreError)?.description.hasPrefix("cannot open the database /proc/belfry-test/db.sqlite: cannot create the directory") == true
        }
        #expect {
            _ = try BelfryDatabase(path: "/etc/hostname/db.sqlite")
        } throws: { error in error is StoreError }
    }
}

@Suite("Decoded definitions")
struct DecodedDefinitionsTests {
    static func launch(_ command: String, triggerName: String = "hourly_cron") throws -> LaunchDefinitions {
        let task = try #require(try definitions(twoTriggers.replacingOccurrences(of: "/bin/true", with: command)).tasks.first)
        let trigger = try #require(task.triggers.first { $0.name == triggerName })
        var bare = task
        bare.triggers = []
        return LaunchDefinitions(task: try JSONEncoder().encode(bare), trigger: try JSONEncoder().encode(trigger))
    }

    @Test("the same bytes decode once; changed bytes (a redeploy) decode afresh; the oldest go first past the capacity")
    func cache() throws {
        let cache = DecodedDefinitions(capacity: 2)
        let first = try Self.launch("/bin/true")
        #expect(try first.decode(cache: cache).task.command == (try first.decode()).task.command)
        #expect(cache.count == 1)
        _ = try first.decode(cache: cache)
        #expect(cache.count == 1, "decoded again")
        let changed = try Self.launch("/bin/false")
        #expect(try changed.decode(cache: cache).task.command == (try changed.decode()).task.command)
        #expect(try first.decode(cache: cache).task.command != (try changed.decode(cache: cache)).task.command)
        #expect(cache.count == 2)
        let other = try Self.launch("/bin/true", triggerName: "rate")
        #expect(try other.decode(cache: cache).trigger.name == "rate")
        #expect(cache.count == 2, "more than its capacity")
        #expect(cache.lookUp(task: first.task, trigger: first.trigger) == nil, "the oldest is not the one dropped")
        #expect(cache.lookUp(task: changed.task, trigger: changed.trigger) != nil)
    }
}
