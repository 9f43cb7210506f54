import BelfryConfig
@testable import BelfryDaemon
import BelfryExecutor
import BelfrySchedule
@testable import BelfryStore
import BelfryTesting
import Foundation
import Synchronization
import Testing

/// A scheduler over a temporary database, in virtual time: the wall clock is `base` plus the
/// manual clock's time plus any jump the test makes.
final class VirtualDaemon: Sendable {
    let directory: TemporaryDirectory
    let store: BelfryDatabase
    let clock = ManualClock()
    let base: Date
    let jump = Mutex<TimeInterval>(0)

    init(yaml: String, startingAt base: String) throws {
        directory = try TemporaryDirectory()
        store = try BelfryDatabase(path: directory.path + "/belfry.sqlite")
        self.base = Date(timeIntervalSince1970: TimeInterval(try InstantText.parse(base, zone: TimeZoneDatabase.system.rules(for: "UTC"), field: "t").secondsSinceEpoch))
        let definitions = try DefinitionLoader.load(files: [("t.yaml", Array(("tasks:\n" + yaml).utf8))])
        try store.deploy(definitions, owner: "test", now: self.base)
    }

    var wall: Date {
        base.addingTimeInterval(Double(clock.now.offset.components.seconds) + jump.withLock { $0 })
    }

    func scheduler(changePoll: Duration, log: @escaping @Sendable (SchedulerEvent) -> Void) -> Scheduler<ManualClock> {
        let executor = RunExecutor(store: store, clock: clock, now: { [self] in wall }, random: { 0.5 }, logDirectory: directory.path + "/logs")
        return Scheduler(store: store, executor: executor, clock: clock, wallClock: { [self] in wall }, changePoll: changePoll, log: log)
    }

    /// Runs a scheduler until the wall clock reaches `end`, jumping from one wake to the next;
    /// `during` is called once the wall clock has passed `at` (a redeploy in the middle, say);
    /// `stopped` once the scheduler has stopped, before waiting for the runs still going.
    func run(
        until end: String, at: String? = nil, changePoll: Duration = .seconds(3600),
        log: @escaping @Sendable (SchedulerEvent) -> Void = { _ in }, during: (() throws -> Void)? = nil,
        stopped: () -> Void = {}
    ) async throws {
        let utc = try TimeZoneDatabase.system.rules(for: "UTC")
        let endDate = Date(timeIntervalSince1970: TimeInterval(try InstantText.parse(end, zone: utc, field: "t").secondsSinceEpoch))
        let middle = try at.map { Date(timeIntervalSince1970: TimeInterval(try InstantText.parse($0, zone: utc, field: "t").secondsSinceEpoch)) }
        var pending = during
        let scheduler = scheduler(changePoll: changePoll, log: log)
        let loop = Task { try await scheduler.run() }
        while true {
            while clock.sleeperCount == 0 { try await Task.sleep(for: .milliseconds(1)) }
            if let action = pending, let middle, wall >= middle {
                try action()
                pending = nil
            }
            let deadline = try #require(clock.nextDeadline)
            let step = clock.now.duration(to: deadline)
            if wall.addingTimeInterval(Double(step.components.seconds)) > endDate { break }
            clock.advance(by: step)
        }
        await scheduler.stop()
        loop.cancel()
        _ = try? await loop.value
        stopped()
        // The runs still going may sleep on the virtual clock too (a run polling for a place in
        // its queue, 200 ms at a time, until the last one's leave is written): keep time moving.
        let done = Mutex(false)
        let running = await scheduler.runningTasks
        let waiter = Task {
            for task in running { await task.value }
            done.withLock { $0 = true }
        }
        while !done.withLock({ $0 }) {
            if clock.sleeperCount > 0 { clock.advance(by: .seconds(1)) }
            try await Task.sleep(for: .milliseconds(5))
        }
        await waiter.value
    }

    /// (slot, state, origin) of every run of a trigger, by slot.
    func runs(_ trigger: String) throws -> [(slot: String, state: RunState, origin: RunOrigin)] {
        var filter = RunFilter()
        filter.trigger = trigger
        filter.limit = 100_000
        return try store.runs(matching: filter).reversed().map { ($0.slot?.rfc3339 ?? "-", $0.state, $0.origin) }
    }
}

/// The engine's slots of `expression` in (after, through].
func engineSlots(_ expression: String, zone: String, after: String, through: String) throws -> [String] {
    let schedule = try CronSchedule(parsing: expression, zone: TimeZoneDatabase.system.rules(for: zone))
    let utc = try TimeZoneDatabase.system.rules(for: "UTC")
    let end = try InstantText.parse(through, zone: utc, field: "t")
    return schedule.slots(after: try InstantText.parse(after, zone: utc, field: "t")).prefix { $0 <= end }.map(\.rfc3339)
}

@Suite("Scheduler in virtual time")
struct SchedulerTests {
    static func dstTriggers(_ zone: String) -> String {
        """
          - name: job
            command: ["/bin/true"]
            triggers:
              - { name: half_past_two, cron: "30 2 * * *", timezone: \(zone) }
              - { name: half_past_one, cron: "30 1 * * *", timezone: \(zone) }
              - { name: quarterly, cron: "*/15 * * * *", timezone: \(zone) }
        """
    }

    @Test("DST days in New York, Lord Howe (30-minute shift) and Dublin: the runs are exactly the engine's slots, none twice", arguments: [
        ("America/New_York", "2026-03-07T12:00:00Z", "2026-03-09T12:00:00Z"), ("America/New_York", "2026-10-31T12:00:00Z", "2026-11-02T12:00:00Z"),
        ("Australia/Lord_Howe", "2026-04-04T00:00:00Z", "2026-04-06T00:00:00Z"), ("Australia/Lord_Howe", "2026-10-03T00:00:00Z", "2026-10-05T00:00:00Z"),
        ("Europe/Dublin", "2026-03-28T12:00:00Z", "2026-03-30T12:00:00Z"), ("Europe/Dublin", "2026-10-24T12:00:00Z", "2026-10-26T12:00:00Z"),
    ])
    func dstDays(zone: String, start: String, end: String) async throws {
        let daemon = try VirtualDaemon(yaml: Self.dstTriggers(zone), startingAt: start)
        try await daemon.run(until: end)
        for (name, expression) in [("half_past_two", "30 2 * * *"), ("half_past_one", "30 1 * * *"), ("quarterly", "*/15 * * * *")] {
            let runs = try daemon.runs(name)
            #expect(runs.map(\.slot) == (try engineSlots(expression, zone: zone, after: start, through: end)), "\(name)")
            #expect(runs.allSatisfy { $0.state == .succeeded && $0.origin == .scheduled }, "\(name)")
        }
    }

    @Test("a 3-hour outage: none records every slot missed, latest runs the last one, all runs them all", arguments: [
        ("none", 0, 12), ("latest", 1, 11), ("all", 12, 0),
    ])
    func outage(policy: String, caughtUp: Int, missed: Int) async throws {
        let daemon = try VirtualDaemon(yaml: """
              - name: job
                command: ["/bin/true"]
                triggers: [{ name: quarterly, cron: "*/15 * * * *", catch_up: \(policy) }]
            """, startingAt: "2026-06-01T00:00:00Z")
        try await daemon.run(until: "2026-06-01T01:00:00Z")
        // The daemon is down for three hours and five minutes: time passes with no scheduler.
        // (Coming back between slots, so that no slot is on time at the restart.)
        daemon.clock.advance(by: .seconds(3 * 3600 + 300))
        try await daemon.run(until: "2026-06-01T05:00:00Z")
        let runs = try daemon.runs("quarterly")
        #expect(runs.map(\.slot) == (try engineSlots("*/15 * * * *", zone: "UTC", after: "2026-06-01T00:00:00Z", through: "2026-06-01T05:00:00Z")))
        let outage = runs.filter { $0.slot > "2026-06-01T01:00:00Z" && $0.slot <= "2026-06-01T04:05:00Z" }
        #expect(outage.count == 12)
        #expect(outage.filter { $0.state == .missed }.count == missed)
        #expect(outage.filter { $0.origin == .catchUp && $0.state == .succeeded }.count == caughtUp)
        if policy == "latest" { #expect(outage.last?.origin == .catchUp) }
    }

    @Test("a redeploy while a run is in flight: the run finishes, later slots use the new definition, none twice")
    func redeployInFlight() async throws {
        let release = FileManager.default.temporaryDirectory.path + "/belfry-release-\(UUID())"
        defer { try? FileManager.default.removeItem(atPath: release) }
        let daemon = try VirtualDaemon(yaml: """
              - name: job
                command: { shell: 'while [ ! -f \(release) ]; do sleep 0.02; done' }
                triggers: [{ name: minutely, cron: "* * * * *" }]
            """, startingAt: "2026-06-01T00:00:30Z")
        let marker = daemon.directory.path + "/new-definition"
        let finishing = Task {
            try await Task.sleep(for: .seconds(1))
            _ = FileManager.default.createFile(atPath: release, contents: nil)
        }
        try await daemon.run(until: "2026-06-01T00:04:30Z", at: "2026-06-01T00:01:00Z", during: {
            // The CLI deploys a new command, through a connection of its own.
            let cli = try BelfryDatabase(path: daemon.store.path)
            try cli.deploy(DefinitionLoader.load(files: [("t.yaml", Array("""
                tasks:
                  - name: job
                    command: { shell: 'echo $BELFRY_TRIGGER_TIME >> \(marker)' }
                    triggers: [{ name: minutely, cron: "* * * * *" }]
                """.utf8))]), owner: "cli", now: daemon.wall)
        })
        try await finishing.value
        let runs = try daemon.runs("minutely")
        #expect(runs.map(\.slot) == ["2026-06-01T00:01:00Z", "2026-06-01T00:02:00Z", "2026-06-01T00:03:00Z", "2026-06-01T00:04:00Z"])
        #expect(runs.allSatisfy { $0.state == .succeeded })
        // The runs of the new definition (they may finish in any order: virtual minutes are short).
        let written = ((try? String(contentsOfFile: marker, encoding: .utf8)) ?? "").split(separator: "\n").sorted()
        #expect(written == ["2026-06-01T00:02:00Z", "2026-06-01T00:03:00Z", "2026-06-01T00:04:00Z"])
    }

    @Test("a backward wall-clock jump runs nothing twice; a forward jump follows catch-up")
    func clockJumps() async throws {
        let daemon = try VirtualDaemon(yaml: """
              - name: job
                command: ["/bin/true"]
                triggers: [{ name: quarterly, cron: "*/15 * * * *" }]
            """, startingAt: "2026-06-01T00:00:00Z")
        try await daemon.run(until: "2026-06-01T01:00:00Z")
        daemon.jump.withLock { $0 -= 3600 }  // the wall clock is set back an hour
        try await daemon.run(until: "2026-06-01T01:30:00Z")
        daemon.jump.withLock { $0 += 3 * 3600 }  // and then forward three
        try await daemon.run(until: "2026-06-01T04:40:00Z")
        let runs = try daemon.runs("quarterly")
        #expect(Set(runs.map(\.slot)).count == runs.count, "a slot ran twice")
        #expect(runs.map(\.slot) == (try engineSlots("*/15 * * * *", zone: "UTC", after: "2026-06-01T00:00:00Z", through: "2026-06-01T04:30:00Z")))
        let jumped = runs.filter { $0.slot > "2026-06-01T01:30:00Z" && $0.slot <= "2026-06-01T04:30:00Z" }
        #expect(jumped.filter { $0.state == .missed }.count == jumped.count - 1, "catch_up latest: one run for the skipped slots")
    }

    @Test("with no active trigger the triggers are read once, not at every wake; an activation is still noticed")
    func idleDaemonReadsOnce() async throws {
        let daemon = try VirtualDaemon(yaml: """
              - name: job
                command: ["/bin/true"]
                triggers: [{ name: minutely, cron: "* * * * *", auto_activate: false }]
            """, startingAt: "2026-06-01T00:00:30Z")
        let loads = Mutex<[Int]>([])
        try await daemon.run(until: "2026-06-01T00:03:30Z", at: "2026-06-01T00:01:30Z", changePoll: .seconds(1), log: { event in
            if case .scheduled(let triggers, _, _) = event { loads.withLock { $0.append(triggers) } }
        }, during: {
            // Another process's activation (a command line's own connection) moves the change counter.
            let other = try BelfryDatabase(path: daemon.directory.path + "/belfry.sqlite")
            _ = try other.setActive(true, task: "t.job", name: "minutely", by: "test", now: daemon.wall)
        })
        #expect(loads.withLock { $0 } == [0, 1], "one read at the start, one at the activation")
        #expect(try daemon.runs("minutely").map(\.slot) == ["2026-06-01T00:02:00Z", "2026-06-01T00:03:00Z"])
    }
}

@Suite("Scheduler when the database fails")
struct StoreFailureTests {
    @Test("writes failing (disk full, read-only) stop nothing: logged once, slots recorded once it works again, none twice")
    func databaseFails() async throws {
        let daemon = try VirtualDaemon(yaml: """
              - name: job
                command: ["/bin/true"]
                triggers: [{ name: minutely, cron: "* * * * *" }]
            """, startingAt: "2026-06-01T00:00:30Z")
        let events = Mutex<[String]>([])
        func writable(_ on: Bool) throws {
            try daemon.store.pool.writeWithoutTransaction { try $0.execute(sql: "PRAGMA query_only = \(on ? 0 : 1)") }
        }
        try writable(false)
        try await daemon.run(until: "2026-06-01T00:05:30Z", at: "2026-06-01T00:03:50Z", changePoll: .seconds(60), log: { event in
            switch event {
            case .storeFailed: events.withLock { $0.append("failed") }
            case .storeRecovered: events.withLock { $0.append("recovered") }
            default: break
            }
        }, during: { try writable(true) })
        #expect(events.withLock { $0 } == ["failed", "recovered"])
        let runs = try daemon.runs("minutely")
        #expect(runs.map(\.slot) == ["2026-06-01T00:01:00Z", "2026-06-01T00:02:00Z", "2026-06-01T00:03:00Z", "2026-06-01T00:04:00Z",
                                     "2026-06-01T00:05:00Z"])
        // Found at 00:04 (the first wake that could write), 00:01-00:02 are over a minute late:
        // missed under the default catch-up (latest) since 00:04 itself is on time.
        #expect(runs.prefix(2).allSatisfy { $0.state == .missed }, "\(runs)")
        #expect(runs.suffix(2).allSatisfy { $0.state == .succeeded })
    }
}

@Suite("Scheduler overlap policies")
struct OverlapTests {
    /// A job that runs until the test creates the release file.
    static func yaml(_ policy: String, release: String) -> String {
        """
          - name: job
            command: { shell: 'while [ ! -f \(release) ]; do sleep 0.02; done' }
            triggers: [{ name: minutely, cron: "* * * * *", overlap: \(policy) }]
        """
    }

    /// The runs of a minutely trigger whose first run blocks while virtual minutes pass, until
    /// `end`.
    static func runsWhileBlocked(_ policy: String, until end: String) async throws -> [(slot: String, state: RunState, origin: RunOrigin)] {
        let release = FileManager.default.temporaryDirectory.path + "/belfry-release-\(UUID())"
        defer { try? FileManager.default.removeItem(atPath: release) }
        let daemon = try VirtualDaemon(yaml: Self.yaml(policy, release: release), startingAt: "2026-06-01T00:00:30Z")
        try await daemon.run(until: end, stopped: { _ = FileManager.default.createFile(atPath: release, contents: nil) })
        return try daemon.runs("minutely")
    }

    @Test("forbid records the slots that come while the previous run is running as skipped")
    func forbid() async throws {
        let runs = try await Self.runsWhileBlocked("forbid", until: "2026-06-01T00:04:30Z")
        #expect(runs.map(\.slot) == ["2026-06-01T00:01:00Z", "2026-06-01T00:02:00Z", "2026-06-01T00:03:00Z", "2026-06-01T00:04:00Z"])
        #expect(runs.map(\.state) == [.succeeded, .skipped, .skipped, .skipped])
    }

    @Test("runs due at once beyond their queue's limit are held back, then all run", .timeLimit(.minutes(1)))
    func burstBeyondTheQueue() async throws {
        // The default queue lets 16 in; the scheduler lets 16 + 32 on to the executor and holds the rest.
        let count = 70
        let yaml = (0..<count).map { "  - { name: job\($0), command: [\"/bin/true\"], triggers: [{ name: t, cron: \"1 0 * * *\" }] }\n" }.joined()
        let daemon = try VirtualDaemon(yaml: yaml, startingAt: "2026-06-01T00:00:30Z")
        try await daemon.run(until: "2026-06-01T00:01:30Z")
        var filter = RunFilter()
        filter.limit = 1000
        let runs = try daemon.store.runs(matching: filter)
        #expect(runs.count == count)
        #expect(runs.allSatisfy { $0.state == .succeeded }, "\(runs.map(\.state))")
    }

    @Test("replace cancels the running run and starts the new one")
    func replace() async throws {
        let runs = try await Self.runsWhileBlocked("replace", until: "2026-06-01T00:02:30Z")
        #expect(runs.map(\.state) == [.cancelled, .succeeded])
    }
}

@Suite("Shares of the slots among daemons")
struct ShareTests {
    @Test("a daemon claims the slots of its share at once and the others' only after the handoff")
    func handoff() async throws {
        let daemon = try VirtualDaemon(yaml: (0..<8).map { """
              - { name: job\($0), command: ["/bin/true"], triggers: [{ name: every, cron: "* * * * * *" }] }

            """ }.joined(), startingAt: "2026-06-01T00:00:00Z")
        let slot = Int64(daemon.base.timeIntervalSince1970) + 1
        let wall = Mutex(daemon.base)
        let executor = RunExecutor(store: daemon.store, clock: daemon.clock, now: { wall.withLock { $0 } }, random: { 0.5 },
                                   logDirectory: daemon.directory.path + "/logs")
        let scheduler = Scheduler(store: daemon.store, executor: executor, clock: daemon.clock, wallClock: { wall.withLock { $0 } }) { _ in }
        await scheduler.share(NodeShare(index: 0, count: 2))
        try await scheduler.refresh()
        let triggers = try daemon.store.activeTriggers().map(\.id)
        let mine = triggers.filter { NodeShare.owner(trigger: $0, slot: slot, count: 2) == 0 }
        #expect(!mine.isEmpty && mine.count < triggers.count, "8 triggers fall to both shares")

        func claimed() throws -> Int {
            var filter = RunFilter()
            filter.limit = 1000
            return try daemon.store.runs(matching: filter).count
        }
        wall.withLock { $0 = Date(timeIntervalSince1970: Double(slot) + 0.02) }
        try await scheduler.tick()
        #expect(try claimed() == mine.count, "its own share at once")
        wall.withLock { $0 = Date(timeIntervalSince1970: Double(slot) + 0.09) }
        try await scheduler.tick()
        #expect(try claimed() == mine.count, "the others' wait for their daemon")
        wall.withLock { $0 = Date(timeIntervalSince1970: Double(slot) + 0.11) }
        try await scheduler.tick()
        #expect(try claimed() == triggers.count, "past the handoff, whatever their daemon left")
        await scheduler.stop()
        for task in await scheduler.runningTasks { await task.value }
    }
}
