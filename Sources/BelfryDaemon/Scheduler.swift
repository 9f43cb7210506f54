import BelfryConfig
import BelfryExecutor
import BelfrySchedule
import BelfryStore
import Foundation

/// The scheduling loop (SPEC §4 and §7): keeps the next slot of every active trigger in a
/// priority queue, sleeps until the earliest, and for each trigger whose slots came due records
/// every slot exactly once (run, missed or skipped) in one transaction with its watermark before
/// any process starts. Wakes at least every `changePoll` to notice CLI changes (activation,
/// deploy) through the database's change counter, and notices wall-clock jumps.
///
/// Generic over the clock it sleeps on; the wall clock is a separate provider, so tests run DST
/// days, outages and clock jumps in virtual time.
public actor Scheduler<C: Clock> where C.Duration == Duration {
    public let store: any Store
    public let executor: RunExecutor<C>
    let clock: C
    let wallClock: @Sendable () -> Date
    let zones: TimeZoneDatabase
    let changePoll: Duration
    /// Called with one line per event worth logging.
    let log: @Sendable (SchedulerEvent) -> Void

    private struct Entry {
        var trigger: ScheduledTrigger
        var slots: any SlotSchedule
        var next: Instant?
    }

    private var entries: [Int64: Entry] = [:]
    /// Whether `entries` may not be what the database holds (never read, or forgotten after a
    /// failure or a fence): read again before the next claim. Not `entries.isEmpty`: with no
    /// active trigger that read (and its log line) came at every wake.
    private var stale = true
    /// Whether the active triggers were read once: changes are reported from then on.
    private var loaded = false
    private var queue = SlotQueue()
    private var running: [Int64: [Int64: Task<Void, Never>]] = [:]  // trigger → run → task
    private var changeCounter: Int?
    private var lastWake: (wall: Date, monotonic: C.Instant)?
    private var stopped = false
    /// The definitions of recent launches, decoded once for the runs that follow.
    private let decoded = DecodedDefinitions()
    /// Each queue's limit, as deployed (others: `QueueGate.defaultLimit`).
    private let queueLimits: [String: Int]
    /// Per queue: the runs let on to the executor, and those held back until one of them ends.
    private var admitted: [String: Int] = [:]
    private var held: [String: ArrivalQueue<Latch>] = [:]

    /// How the loop waits between wakes; nil: `clock.sleep`.
    let wait: (@Sendable (Duration) async throws -> Void)?
    /// Set while the daemon cannot trust its lease: nothing is claimed.
    private var fenced = false
    /// This daemon's share of the slots among the daemons sharing the store: the slots of the
    /// others' shares it claims only `NodeShare.handoff` after they came due (if their daemon
    /// has not, it may be gone).
    private var currentShare = NodeShare.alone
    /// Due slots of other shares, out of the queue until they become this daemon's to claim too.
    private var deferred: [(slot: Instant, trigger: Int64, claimable: Date)] = []
    /// Whether the lease may be trusted now (on SQLite, always).
    let leaseTrusted: @Sendable () -> Bool

    /// `wait` replaces `clock.sleep` between wakes (the daemon waits in `poll(2)`, see
    /// `pollWait`).
    public init(
        store: any Store, executor: RunExecutor<C>, clock: C, wallClock: @escaping @Sendable () -> Date,
        zones: TimeZoneDatabase = .system, changePoll: Duration = .seconds(1),
        wait: (@Sendable (Duration) async throws -> Void)? = nil, leaseTrusted: @escaping @Sendable () -> Bool = { true },
        queueLimits: [String: Int] = [:], log: @escaping @Sendable (SchedulerEvent) -> Void
    ) {
        (self.store, self.executor, self.clock, self.wallClock, self.zones) = (store, executor, clock, wallClock, zones)
        self.queueLimits = queueLimits
        (self.changePoll, self.wait, self.leaseTrusted, self.log) = (changePoll, wait, leaseTrusted, log)
    }

    /// The daemon no longer trusts its lease: claims stop, and every attempt's process group is
    /// taken down (SIGTERM, SIGKILL after its kill_grace); their runs go back to the queue if the
    /// store still takes this daemon's writes, else whoever takes the node over resumes them.
    /// Does not wait for the runs' last writes, which may wait for a database that is cut off.
    public func fence() {
        fenced = true
        executor.interrupting.set()
        for task in runningTasks { task.cancel() }
        entries = [:]
        stale = true
    }

    /// Joined again: claims resume from what the store holds (slots missed meanwhile follow
    /// catch-up, unless another node ran them).
    public func unfence() {
        fenced = false
        executor.interrupting.clear()
        entries = [:]
        stale = true
    }

    /// The share of the slots this daemon claims first (renewed with its lease).
    public func share(_ share: NodeShare) { currentShare = share }

    /// Starts a run of `task` now, outside any trigger (through the HTTP API): its record first,
    /// then its process, as for a slot. Returns the run's id.
    public func startNow(_ task: TaskDefinition, inputs: [String: String], origin: RunOrigin) async throws -> Int64 {
        guard !stopped, !fenced, leaseTrusted() else { throw SchedulerUnavailable() }
        let id = try await store.createRun(task: task.fullName, trigger: nil, slot: nil, origin: origin, inputs: nil, at: wallClock())
        let (executor, log, term) = (self.executor, self.log, store.term)
        let run = Task {
            await StoreTerm.$current.withValue(term) {
                do {
                    let result = try await executor.run(RunRequest(task: task, origin: origin, inputs: inputs, runID: id))
                    log(.finished(task: task.fullName, trigger: "(\(origin.rawValue))", run: id, state: result.state, reason: result.reason))
                } catch {
                    log(.failedToRun(task: task.fullName, trigger: "(\(origin.rawValue))", run: id, reason: "\(error)"))
                }
            }
            self.finished(run: id, trigger: Self.untriggered)
        }
        running[Self.untriggered, default: [:]][id] = run
        return id
    }

    /// Where runs started without a trigger are kept among the running ones (trigger ids start at 1).
    private static var untriggered: Int64 { 0 }

    /// Cancels run `id` if it runs here; whether it did.
    public func cancelHere(_ id: Int64) -> Bool {
        guard let task = runningTask(id) else { return false }
        task.cancel()
        return true
    }

    /// Cancels runs of this daemon that another asked to cancel.
    public func cancel(runs ids: [Int64]) {
        for id in ids {
            guard let task = runningTask(id) else { continue }
            log(.cancelRequested(run: id))
            task.cancel()
        }
    }

    /// The task running run `id` here, if any.
    private func runningTask(_ id: Int64) -> Task<Void, Never>? {
        running.values.lazy.compactMap { $0[id] }.first
    }

    /// How many triggers are scheduled and runs are running, and the next slot.
    public var status: (triggers: Int, running: Int, nextSlot: Instant?) {
        (entries.count, running.values.reduce(0) { $0 + $1.count }, queue.peek()?.slot)
    }

    /// The next slot of each scheduled trigger, as the scheduler holds them (for `/metrics`).
    public var nextSlots: [(task: String, trigger: String, next: Instant?)] {
        entries.values.map { ($0.trigger.task, $0.trigger.name, $0.next) }
    }

    /// How many runs this scheduler has seen to their end.
    public private(set) var finishedRuns = 0

    /// Runs until cancelled or `stop()`: then returns without waiting for running runs.
    /// A database that fails (disk full, read-only, I/O error) does not stop the loop: each
    /// failure is logged, the triggers are read again from what the database holds (slots not
    /// recorded come due again, under their catch-up policy), and the loop goes on every
    /// `changePoll` until the database works again.
    public func run() async throws {
        var failing = false
        while !stopped, !Task.isCancelled {
            var wait = changePoll
            do {
                if failing { (entries, stale) = ([:], true) }  // what was known before the failure may not be recorded: start from the database
                if stale { try await reload() }
                try await tick()
                try await recordUnrecorded()
                if failing {
                    log(.storeRecovered)
                    // Runs claimed just as the database failed, whose claim this daemon never heard back from.
                    try await resume(try await store.unlaunchedRuns().filter { runningTask($0.id) == nil })
                }
                failing = false
                // Until the next slot to the nanosecond (slots are whole seconds, the wall clock is not).
                if let next = queue.peek()?.slot {
                    let seconds = Double(next.secondsSinceEpoch) - wallClock().timeIntervalSince1970
                    wait = min(wait, .nanoseconds(Int64(max(0, seconds) * 1e9)))
                }
                if let handoff = deferred.lazy.map(\.claimable).min() {
                    wait = min(wait, .nanoseconds(Int64(max(0, handoff.timeIntervalSince(wallClock())) * 1e9)))
                }
            } catch {
                if !failing { log(.storeFailed(reason: "\(error)")) }
                failing = true
            }
            if let sleep = self.wait { try await sleep(wait) } else { try await clock.sleep(for: wait) }
        }
    }

    /// Runs whose end could not be recorded (the database failed under them): recorded failed
    /// once it works again.
    private var unrecorded: [(run: Int64, reason: String)] = []

    private func recordUnrecorded() async throws {
        while let (run, reason) = unrecorded.first {
            do {
                try await store.finishRun(run, state: .failed, reason: "the database failed while it ran: \(reason)", exitCode: nil, commandUsed: nil,
                                          at: wallClock())
            } catch let error as StoreError {
                guard case .notOwner = error else { throw error }
                log(.staleWriteRefused(run: run, reason: "\(error)"))  // taken over: its new owner records it
            }
            unrecorded.removeFirst()
        }
    }

    /// Stops launching runs; `run()` returns at its next wake.
    public func stop() { stopped = true }

    /// Whether `stop()` was called.
    public var isStopping: Bool { stopped }

    /// Starts again the runs a previous daemon left unfinished (system retries), with their
    /// trigger's current definition. Runs whose trigger is gone or inactive are recorded failed.
    public func resume(_ runs: [InterruptedRun]) async throws {
        guard !stopped else { return }
        // Just unfenced, or failing: the triggers are read again first, so that no run is
        // taken for one whose trigger is gone.
        if stale { try await reload() }
        var found: [Int32] = []
        for run in runs {
            if let pid = run.orphanPID, await terminateOrphanedAttempt(pid: pid, grace: .seconds(10)) {
                found.append(pid)
            }
        }
        // Attempts whose pid was never recorded (killed between the start and the record).
        found += await terminateOrphanedAttempts(database: store.location, runs: Set(runs.filter(\.onThisHost).map(\.id)), grace: .seconds(10))
        if !found.isEmpty { log(.orphansTerminated(groups: found)) }
        for run in runs {
            guard let entry = entries.values.first(where: { $0.trigger.task == run.task && $0.trigger.name == run.trigger }) else {
                try await store.finishRun(run.id, state: .failed, reason: "interrupted, and its trigger is no longer active", exitCode: nil,
                                    commandUsed: nil, at: wallClock())
                continue
            }
            guard let definitions = try await store.launchDefinitions(trigger: entry.trigger.id) else { continue }  // deleted just now: next start
            // Found twice (a takeover and a sweep after a failure, between two awaits): started once.
            guard runningTask(run.id) == nil else { continue }
            log(.resumed(task: run.task, trigger: run.trigger, run: run.id, attempts: run.attempts))
            start(.init(slot: run.slot, runID: run.id, origin: run.origin, definitions: definitions), trigger: entry.trigger,
                  previousAttempts: run.attempts)
        }
    }

    /// Reads the triggers again now (after this process deployed: its own commits do not move
    /// the change counter it watches).
    public func refresh() async throws { try await reload() }

    /// The runs in flight, to wait for or cancel at shutdown.
    public var runningTasks: [Task<Void, Never>] { running.values.flatMap(\.values) }

    /// One wake: notice clock jumps and database changes, then handle every trigger that is due.
    public func tick() async throws {
        guard !fenced, leaseTrusted() else { return }
        let wall = wallClock()
        let monotonic = clock.now
        if let last = lastWake {
            let wallElapsed = wall.timeIntervalSince(last.wall)
            let elapsed = last.monotonic.duration(to: monotonic)
            let monotonicElapsed = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            if abs(wallElapsed - monotonicElapsed) > 2 {
                // Forward: the slots skipped over are due now and follow catch-up. Backward:
                // watermarks keep every slot from running twice.
                log(.clockJump(seconds: wallElapsed - monotonicElapsed))
            }
        }
        lastWake = (wall, monotonic)
        let counter = try await store.changeCounter()
        if let known = changeCounter, known != counter { try await reload() }
        changeCounter = counter
        let now = Instant(wall)
        var claims: [SlotClaim] = []
        for item in deferred where item.claimable <= wall { queue.push(item.slot, trigger: item.trigger) }
        deferred.removeAll { $0.claimable <= wall }
        let handoff = Double(NodeShare.handoff.components.attoseconds) / 1e18 + Double(NodeShare.handoff.components.seconds)
        while let top = queue.peek(), top.slot <= now {
            _ = queue.pop()
            guard var entry = entries[top.trigger], entry.next == top.slot else { continue }  // stale
            let claimable = Date(timeIntervalSince1970: Double(top.slot.secondsSinceEpoch) + handoff)
            if !currentShare.owns(trigger: top.trigger, slot: top.slot.secondsSinceEpoch), wall < claimable {
                deferred.append((top.slot, top.trigger, claimable))
                continue
            }
            claims.append(decide(&entry, now: now))
            entries[top.trigger] = entry
            if let next = entry.next { queue.push(next, trigger: top.trigger) }
        }
        guard !claims.isEmpty else { return }
        // Every trigger due now is claimed in one transaction, then launched.
        let launches = try await store.claimSlots(claims, evaluatedThrough: now, at: wallClock())
        for (claim, launches) in zip(claims, launches) {
            let trigger = claim.trigger
            for (slot, outcome) in claim.outcomes {
                if case .notRun(let state, let reason) = outcome {
                    log(.notRun(task: trigger.task, trigger: trigger.name, slot: slot, state: state, reason: reason))
                }
            }
            if !launches.isEmpty, trigger.overlap == .replace {
                for task in running[trigger.id]?.values ?? [:].values { task.cancel() }
            }
            for launch in launches { start(launch, trigger: trigger) }
        }
    }

    /// Reads the active triggers again, keeping what is known of unchanged ones.
    private func reload() async throws {
        let triggers = try await store.activeTriggers()
        var fresh: [Int64: Entry] = [:]
        var cronSlots: [TriggerSchedule: any SlotSchedule] = [:]  // a cron's slots do not depend on its activation
        queue = SlotQueue()
        deferred = []
        for trigger in triggers {
            let slots: any SlotSchedule
            do {
                let shared = !trigger.schedule.isHashed  // a hashed cron's slots are its own
                if case .cron = trigger.schedule, shared, let known = cronSlots[trigger.schedule] {
                    slots = known
                } else {
                    slots = try trigger.schedule.slots(
                        activatedAt: trigger.activatedAt, hashKey: TriggerSchedule.hashKey(task: trigger.task, trigger: trigger.name), zones: zones)
                    if case .cron = trigger.schedule, shared { cronSlots[trigger.schedule] = slots }
                }
            } catch {
                log(.unschedulable(task: trigger.task, trigger: trigger.name, reason: "\(error)"))
                continue
            }
            // Slots before the activation are not this trigger's to run (it was inactive then).
            let from = max(trigger.watermark ?? trigger.activatedAt, trigger.activatedAt)
            var entry = Entry(trigger: trigger, slots: slots, next: slots.nextSlot(after: from))
            if let old = entries[trigger.id], old.trigger.schedulesLike(trigger) {
                entry.next = old.next
            }
            if let next = entry.next {
                queue.push(next, trigger: trigger.id)
            }
            fresh[trigger.id] = entry
        }
        let previous = entries
        entries = fresh
        stale = false
        if loaded { await reportActivations(before: previous, after: fresh) }
        // Another process's commit (a run recorded by `belfry run`, say) also brings a read: said
        // only when the triggers it finds are not the ones held.
        let changed = !loaded || previous.count != fresh.count
            || fresh.contains { id, entry in previous[id].map { !$0.trigger.schedulesLike(entry.trigger) } ?? true }
        loaded = true
        log(.scheduled(triggers: fresh.count, next: queue.peek()?.slot, changed: changed))
    }

    /// Says which triggers were activated or deactivated since the last reload (by the CLI, the
    /// HTTP API, another node, or a deploy adding or deleting them), and by whom. Many at once
    /// (a deploy) are one line.
    private func reportActivations(before: [Int64: Entry], after: [Int64: Entry]) async {
        let activated = after.filter { before[$0.key] == nil }.values.map(\.trigger)
        let deactivated = before.filter { after[$0.key] == nil }.values.map(\.trigger)
        guard !activated.isEmpty || !deactivated.isEmpty else { return }
        guard activated.count + deactivated.count <= 20 else {
            return log(.activationsChanged(activated: activated.count, deactivated: deactivated.count))
        }
        for (trigger, active) in activated.map({ ($0, true) }) + deactivated.map({ ($0, false) }) {
            // A trigger the deploy deleted is no longer there: the deploy's own line says so.
            guard let status = try? await store.trigger(task: trigger.task, name: trigger.name), status.active == active else { continue }
            log(.activationChanged(task: trigger.task, trigger: trigger.name, active: active, by: status.updatedBy))
        }
    }

    /// Collects the slots of `entry` that came due and decides what becomes of each (catch-up,
    /// overlap); moves the entry to its next slot.
    private func decide(_ entry: inout Entry, now: Instant) -> SlotClaim {
        var due: [Instant] = []
        var slot = entry.next
        while let current = slot, current <= now, due.count < 1_000_000 {
            due.append(current)
            slot = entry.slots.nextSlot(after: current)
        }
        entry.next = slot
        let trigger = entry.trigger
        let catchUp = CatchUp(policy: trigger.catchUp, startingDeadlineMilliseconds: trigger.startingDeadlineMilliseconds)
        var outcomes = catchUp.decide(due, now: now)
        if trigger.overlap == .forbid, !(running[trigger.id]?.isEmpty ?? true) {
            outcomes = outcomes.map { item in
                guard case .run = item.outcome else { return item }
                return (item.slot, .notRun(.skipped, reason: "overlap is forbid and the previous run is still running"))
            }
        }
        return SlotClaim(trigger: trigger, outcomes: outcomes)
    }

    /// Runs the launch in a task of its own, with its definitions as they were when the slot was
    /// claimed (decoded here, once: their queue decides whether the run is held back).
    private func start(_ launch: SlotLaunch, trigger: ScheduledTrigger, previousAttempts: Int = 0) {
        log(.queued(task: trigger.task, trigger: trigger.name, slot: launch.slot, run: launch.runID, origin: launch.origin))
        let (executor, log, term, clock) = (self.executor, self.log, store.term, self.clock)
        let definitions = Result { try launch.definitions.decode(cache: decoded) }
        // Beyond what its queue will take soon (its limit + `launchSlack`), a run is held back as
        // a small task: the frames of a run on its way (about 16 KB) are made only once its queue
        // is close to a place. 100,000 runs due at once held 1.8 GB without this.
        let queue = (try? definitions.get())?.trigger.queue ?? "default"
        var place: Latch?
        // Admitted now, the run joins the wave of runs on their way to their first process.
        var ticket: LaunchWave.Ticket?
        if admitted[queue, default: 0] < (queueLimits[queue] ?? QueueGate<C>.defaultLimit) + Self.launchSlack {
            admitted[queue, default: 0] += 1
            ticket = executor.launches.ticket()
        } else {
            place = Latch()
            held[queue, default: ArrivalQueue()].append(place!)
        }
        let task = Task { [place, ticket] in
            let heldSince = clock.now
            await place?.wait()
            let heldFor = heldSince.duration(to: clock.now)
            let failure = await StoreTerm.$current.withValue(term) {
                await Self.run(launch, definitions: definitions, trigger: trigger, previousAttempts: previousAttempts, heldFor: heldFor,
                               ticket: ticket, executor: executor, log: log)
            }
            ticket?.leave()  // the run never reached the executor (its definitions could not be read)
            if let failure, !executor.interrupting.isSet { self.unrecorded.append((launch.runID, failure)) }
            self.finished(run: launch.runID, trigger: trigger.id, queue: queue)
        }
        running[trigger.id, default: [:]][launch.runID] = task
    }

    /// Runs past their queue's limit let on to the executor, where they wait for a place in order.
    static var launchSlack: Int { 32 }

    @concurrent
    private static func run(
        _ launch: SlotLaunch, definitions: Result<(task: TaskDefinition, trigger: TriggerDefinition), any Error>, trigger: ScheduledTrigger,
        previousAttempts: Int, heldFor: Duration, ticket: LaunchWave.Ticket?, executor: RunExecutor<C>,
        log: @Sendable (SchedulerEvent) -> Void
    ) async -> String? {
        do {
            let definitions = try definitions.get()
            var request = RunRequest(
                task: definitions.task, trigger: definitions.trigger, slot: launch.slot, origin: launch.origin,
                runID: launch.runID, previousAttempts: previousAttempts)
            request.heldFor = heldFor
            request.launchTicket = ticket
            let result = try await executor.run(request)
            log(.finished(task: trigger.task, trigger: trigger.name, run: result.runID, state: result.state, reason: result.reason))
            return nil
        } catch let error as StoreError {
            if case .notOwner = error {
                log(.staleWriteRefused(run: launch.runID, reason: "\(error)"))
                return nil
            }
            log(.failedToRun(task: trigger.task, trigger: trigger.name, run: launch.runID, reason: "\(error)"))
            return "\(error)"
        } catch {
            log(.failedToRun(task: trigger.task, trigger: trigger.name, run: launch.runID, reason: "\(error)"))
            return "\(error)"
        }
    }

    private func finished(run: Int64, trigger: Int64, queue: String? = nil) {
        if let queue {
            // Its place goes to the first run held back for the queue, if any.
            if let next = held[queue]?.removeFirst() { next.open() } else { admitted[queue, default: 1] -= 1 }
        }
        finishedRuns += 1
        running[trigger]?[run] = nil
        if running[trigger]?.isEmpty == true { running[trigger] = nil }
    }
}

/// The daemon is stopping or fenced: it starts nothing.
public struct SchedulerUnavailable: Error, CustomStringConvertible {
    public var description: String { "the daemon is stopping or has lost its lease: it starts nothing now" }
}

/// What the scheduler reports, one event per log line.
public enum SchedulerEvent: Sendable {
    case scheduled(triggers: Int, next: Instant?, changed: Bool)
    case queued(task: String, trigger: String, slot: Instant, run: Int64, origin: RunOrigin)
    case finished(task: String, trigger: String, run: Int64, state: RunState, reason: String?)
    case notRun(task: String, trigger: String, slot: Instant, state: RunState, reason: String)
    case failedToRun(task: String, trigger: String, run: Int64, reason: String)
    case unschedulable(task: String, trigger: String, reason: String)
    /// A trigger was activated or deactivated, noticed in the database; `by` is its `updated_by`.
    case activationChanged(task: String, trigger: String, active: Bool, by: String?)
    /// Many at once (a deploy): the counts.
    case activationsChanged(activated: Int, deactivated: Int)
    case clockJump(seconds: Double)
    case resumed(task: String, trigger: String, run: Int64, attempts: Int)
    case orphansTerminated(groups: [Int32])
    case storeFailed(reason: String)
    case storeRecovered
    /// This daemon stopped trusting its lease: its attempts were taken down.
    case fenced(reason: String)
    /// Joined the store (again) as a new node.
    case joined(node: String)
    /// A node whose lease expired was taken over by this one.
    case nodeTakenOver(node: String)
    /// Another node asked for this run to be cancelled (`overlap: replace`).
    case cancelRequested(run: Int64)
    /// A write about a run this daemon no longer owns was refused.
    case staleWriteRefused(run: Int64, reason: String)
}

/// A min-heap of (next slot, trigger id).
struct SlotQueue {
    private var heap: [(slot: Instant, trigger: Int64)] = []

    func peek() -> (slot: Instant, trigger: Int64)? { heap.first }

    mutating func push(_ slot: Instant, trigger: Int64) {
        heap.append((slot, trigger))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].slot < heap[parent].slot else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (slot: Instant, trigger: Int64)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count, heap[left].slot < heap[smallest].slot { smallest = left }
            if right < heap.count, heap[right].slot < heap[smallest].slot { smallest = right }
            if smallest == parent { break }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}
