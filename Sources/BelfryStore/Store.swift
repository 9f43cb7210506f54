import BelfryConfig
import BelfrySchedule
import Foundation

/// What the scheduler, the executor and the CLI ask of the state store. Two backends stand
/// behind it: SQLite (`BelfryDatabase`, the embedded default, one daemon) and PostgreSQL
/// (`BelfryPostgres`, any number of daemons sharing one schedule). Code above the store never
/// asks which one it has; what differs between one daemon and several (leases, ownership of
/// runs) is decided here.
///
/// Every write about a run is made as the store's current owner of it: on PostgreSQL a write
/// from a daemon that lost its lease (and with it its runs) is refused with
/// `StoreError.notOwner`, never applied.
public protocol Store: AnyObject, Sendable {
    /// Names the store in messages and to jobs: a file's path, or a URL without its password.
    var location: String { get }
    /// Where this machine keeps attempt logs.
    var logDirectory: String { get }
    /// Which of this process's memberships is current: it changes at every `join`. A run's
    /// task writes under the term it started in (`StoreTerm.current`), so that the writes of a
    /// task left over from before a fence are refused even when this same process has taken
    /// its runs over since. Always 0 on SQLite.
    var term: Int { get }

    // Definitions.
    func deploy(_ definitions: Definitions, owner: String, now: Date) async throws -> DeploySummary
    func deployUnchanged(fingerprints: [String: String], owner: String, now: Date) async throws -> DeploySummary?
    /// The fingerprint of each deployed definition file, by path (`DefinitionLoader.fingerprints`).
    func deployedFingerprints() async throws -> [String: String]
    /// What `deploy` would change, changing nothing.
    func deployPreview(_ definitions: Definitions) async throws -> DeploySummary
    /// The deployed triggers (of `task`), by task and name; the first `limit` of them.
    func triggers(task: String?, limit: Int?) async throws -> [TriggerStatus]
    func trigger(task: String, name: String) async throws -> TriggerStatus
    func definition(task: String, trigger: String) async throws -> TriggerDefinition
    func setActive(_ active: Bool, task: String, name: String, by user: String, now: Date) async throws -> TriggerStatus
    func deleteTrigger(task: String, name: String) async throws
    func task(named name: String) async throws -> TaskDefinition
    func queueLimits() async throws -> [String: Int]

    // Scheduling.
    /// A number that changes whenever another process changes what is deployed or active.
    func changeCounter() async throws -> Int
    func activeTriggers() async throws -> [ScheduledTrigger]
    func launchDefinitions(trigger id: Int64) async throws -> LaunchDefinitions?
    /// Records the outcome of each slot and advances each trigger's watermark, in one
    /// transaction, before anything runs; returns per claim the runs to launch now. A slot
    /// recorded before (by this or another daemon) is left alone.
    func claimSlots(_ claims: [SlotClaim], evaluatedThrough watermark: Instant, at: Date) async throws -> [[SlotLaunch]]
    /// Runs this store's daemon must resume (left `queued` or `running` by a daemon that is
    /// gone), each put back in the queue as a system retry or failed past `maxSystemRetries`.
    func interruptedRuns(maxSystemRetries: Int, at: Date) async throws -> [InterruptedRun]

    // Runs.
    func createRun(task: String, trigger: String?, slot: Instant?, origin: RunOrigin, inputs: String?, at: Date) async throws -> Int64
    func recordRunNotRun(task: String, trigger: String?, slot: Instant?, origin: RunOrigin, state: RunState, reason: String, at: Date)
        async throws -> Int64
    func startAttempt(run: Int64, number: Int, pid: Int32?, logPath: String?, at: Date) async throws
    func setAttemptProcess(run: Int64, number: Int, pid: Int32) async throws
    func finishAttempt(run: Int64, number: Int, exitCode: Int32?, signal: Int32?, timedOut: Bool, outputTail: Data, at: Date) async throws
    func finishRun(_ run: Int64, state: RunState, reason: String?, exitCode: Int32?, commandUsed: String?, at: Date) async throws
    func runs(matching filter: RunFilter) async throws -> [RunRecord]
    func run(id: Int64) async throws -> (run: RunRecord, attempts: [AttemptRecord], steps: [StepRecord])?
    func insertRuns(_ runs: [RunRecord]) async throws
    func runCount() async throws -> Int
    func pruneHistory(_ policy: HistoryPolicy, now: Date) async throws -> Int
    func statistics(task: String?, since: Date?) async throws -> [TaskStatistics]
    /// When each trigger's latest successful run finished, by `ENV.TASK TRIGGER`.
    func lastSuccesses() async throws -> [String: Date]

    // Circuit breakers and steps.
    func circuitState(task: String) async throws -> CircuitState
    func setCircuitState(_ state: CircuitState, task: String) async throws
    func step(run: Int64, name: String) async throws -> StepRecord?
    func recordStep(run: Int64, name: String, exitCode: Int32, stdout: Data, at: Date) async throws

    // Queues across daemons.
    /// Takes a place in `queue` for `run` among all the daemons sharing the store, when fewer
    /// than `limit` of the queue's queued or running runs hold one; false when it is full. On
    /// SQLite, where one daemon runs everything, that daemon's own queues decide: always true.
    func enterQueue(_ queue: String, run: Int64, limit: Int) async throws -> Bool
    /// Gives the run's place in its queue back.
    func leaveQueue(run: Int64) async throws

    // Daemons.
    /// Makes this process the store's daemon, or one of them: on SQLite it takes the lock that
    /// keeps a second daemon off the file; on PostgreSQL it registers a node (a new id at every
    /// join) holding a lease of `lease` in the database's clock. Every run this process claims
    /// from then on is owned by that node.
    func join(name: String, lease: Duration) async throws
    /// Renews this daemon's lease; nil when it was lost (expired and taken over): the daemon
    /// owns nothing any more and must join again. Else this daemon's share of the slots: its
    /// place among the live daemons, by id, and their number.
    func renewLease() async throws -> NodeShare?
    /// Takes over the daemons whose lease expired: their runs that were running or queued are
    /// this daemon's to resume, as system retries — a running one once the lease has been
    /// expired for its task's `kill_grace`, so that a partitioned node has taken its processes
    /// down first.
    /// Returns those runs and the names of the nodes taken over.
    func takeOverLostNodes(at: Date) async throws -> (runs: [InterruptedRun], nodes: [String])
    /// Runs this daemon claimed that never started: queued, without an attempt. A claim whose
    /// commit reached the server but whose answer was lost (the connection cut at that instant)
    /// leaves such runs behind. Empty on SQLite, whose claims commit in the process.
    func unlaunchedRuns() async throws -> [InterruptedRun]
    /// Asks the daemon that owns run `id` to cancel it (within a second); whether the run was
    /// queued or running. On SQLite there is no other daemon to ask: false.
    func requestCancel(run id: Int64) async throws -> Bool
    /// A daemon that stopped gracefully gives its lease up, so that another takes its queued
    /// (interrupted) runs over at once rather than when the lease would have expired.
    func leave() async throws
    /// The daemons sharing this store (one row per daemon start; empty on SQLite).
    func nodes() async throws -> [NodeRecord]
    /// The runs this daemon owns that another process asked to cancel (`overlap: replace`
    /// on another node).
    func cancelRequests() async throws -> [Int64]

    // Copies between stores (`belfry copy-store`).
    /// Every row of every table of `StoreTable.all`, read in one transaction.
    func export() async throws -> StoreContents
    /// Writes `contents` into this store in one transaction; refused (`StoreError.notEmpty`)
    /// when the store holds a task or a run.
    func importContents(_ contents: StoreContents) async throws
}

/// The term a task writes under (see `Store.term`); nil: the store's current one.
extension Store {
    /// Every deployed trigger (of `task`).
    public func triggers(task: String?) async throws -> [TriggerStatus] { try await triggers(task: task, limit: nil) }
}

public enum StoreTerm {
    @TaskLocal public static var current: Int?
}

/// Which slots a daemon claims first: those whose `owner(...)` is its `index` among `count`
/// live daemons. The others wait `NodeShare.handoff` for their own daemon before claiming them
/// (it may be gone): the daemons share the work, and seldom contend for the same rows.
public struct NodeShare: Sendable, Hashable {
    public var index: Int
    public var count: Int

    public init(index: Int, count: Int) { (self.index, self.count) = (index, max(1, count)) }

    /// One daemon: every slot is its own.
    public static let alone = NodeShare(index: 0, count: 1)

    /// How long a slot waits for the daemon whose share it is before the others claim it.
    public static let handoff: Duration = .milliseconds(100)

    /// The daemon (its index) a trigger's slot falls to: a fixed mix of both, so that one
    /// trigger's slots spread over the daemons too.
    public static func owner(trigger: Int64, slot: Int64, count: Int) -> Int {
        var x = UInt64(bitPattern: trigger) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(bitPattern: slot) &* 0xC2B2_AE3D_27D4_EB4F
        x ^= x >> 29
        x &*= 0x1656_67B1_9E37_79F9
        x ^= x >> 32
        return Int(x % UInt64(max(1, count)))
    }

    public func owns(trigger: Int64, slot: Int64) -> Bool {
        count == 1 || Self.owner(trigger: trigger, slot: slot, count: count) == index
    }
}

/// A daemon sharing a PostgreSQL store (`belfry nodes`).
public struct NodeRecord: Sendable, Hashable {
    public var id: String
    public var name: String
    public var host: String
    public var pid: Int32
    public var startedAt: Date
    public var leaseUntil: Date
    /// Runs it owns that are running now.
    public var running: Int

    public init(id: String, name: String, host: String, pid: Int32, startedAt: Date, leaseUntil: Date, running: Int) {
        (self.id, self.name, self.host, self.pid, self.startedAt, self.leaseUntil, self.running) = (id, name, host, pid, startedAt, leaseUntil, running)
    }
}

/// The slots of one trigger that came due, each with what becomes of it.
public struct SlotClaim: Sendable {
    public var trigger: ScheduledTrigger
    public var outcomes: [(slot: Instant, outcome: SlotOutcome)]

    public init(trigger: ScheduledTrigger, outcomes: [(slot: Instant, outcome: SlotOutcome)]) {
        (self.trigger, self.outcomes) = (trigger, outcomes)
    }
}

/// A run created by a claim, to be launched now.
public struct SlotLaunch: Sendable {
    public var slot: Instant
    public var runID: Int64
    public var origin: RunOrigin
    /// As deployed when the slot was claimed.
    public var definitions: LaunchDefinitions

    public init(slot: Instant, runID: Int64, origin: RunOrigin, definitions: LaunchDefinitions) {
        (self.slot, self.runID, self.origin, self.definitions) = (slot, runID, origin, definitions)
    }
}

/// A task's and a trigger's definitions as stored (JSON), decoded by the run that uses them,
/// off the scheduler.
public struct LaunchDefinitions: Sendable {
    var task: Data
    var trigger: Data

    package init(task: Data, trigger: Data) {
        (self.task, self.trigger) = (task, trigger)
    }

    /// Decodes, or takes from `cache` what was decoded from the same bytes before (decoding
    /// was a tenth of the daemon's work per run for every-second triggers).
    public func decode(cache: DecodedDefinitions? = nil) throws -> (task: TaskDefinition, trigger: TriggerDefinition) {
        if let cache, let known = cache.lookUp(task: task, trigger: trigger) { return known }
        let decoder = JSONDecoder()
        let decoded = (try decoder.decode(TaskDefinition.self, from: task), try decoder.decode(TriggerDefinition.self, from: trigger))
        cache?.store(decoded, task: task, trigger: trigger)
        return decoded
    }
}

/// A run that a daemon that is gone left `queued` or `running`.
public struct InterruptedRun: Sendable {
    public var id: Int64
    public var task: String
    public var trigger: String
    public var slot: Instant
    public var origin: RunOrigin
    /// Attempts it had started.
    public var attempts: Int
    /// The process of the attempt that was running, if any: its group may still be alive.
    public var orphanPID: Int32?
    /// Whether its last attempt ran on this machine, where its processes can be looked for
    /// (a run taken over from a node on another host cannot).
    public var onThisHost: Bool

    package init(id: Int64, task: String, trigger: String, slot: Instant, origin: RunOrigin, attempts: Int, orphanPID: Int32?, onThisHost: Bool = true) {
        (self.id, self.task, self.trigger, self.slot, self.origin, self.attempts) = (id, task, trigger, slot, origin, attempts)
        (self.orphanPID, self.onThisHost) = (orphanPID, onThisHost)
    }
}
