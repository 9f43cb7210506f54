import BelfryConfig
import BelfrySchedule
import BelfryStore
import Foundation
import Synchronization

/// What to run: a task, for a trigger's slot or by hand.
public struct RunRequest: Sendable {
    public var task: TaskDefinition
    public var trigger: TriggerDefinition?
    public var slot: Instant?
    public var origin: RunOrigin
    /// Inputs given by hand (a manual run); a trigger's come from its definition.
    public var inputs: [String: String]
    /// The run's record when the scheduler has already committed it (`queued`); nil: create one.
    public var runID: Int64?
    /// Attempts an interrupted run had started already: numbering goes on from there, and they
    /// do not count against the task's retries (they were system retries).
    public var previousAttempts: Int
    /// How long the run already waited before it reached the executor (held by the scheduler
    /// until its queue was close to having a place): it counts against `max_queued_time`.
    public var heldFor: Duration = .zero
    /// The run's place in the executor's `launches` wave, when the scheduler started it among
    /// others due at once. The executor leaves it for the run.
    public var launchTicket: LaunchWave.Ticket?

    public init(
        task: TaskDefinition, trigger: TriggerDefinition? = nil, slot: Instant? = nil, origin: RunOrigin,
        inputs: [String: String] = [:], runID: Int64? = nil, previousAttempts: Int = 0
    ) {
        (self.task, self.trigger, self.slot, self.origin, self.inputs, self.runID) = (task, trigger, slot, origin, inputs, runID)
        self.previousAttempts = previousAttempts
    }
}

/// How a run ended.
public struct RunResult: Sendable, Hashable {
    public var runID: Int64
    public var state: RunState
    public var exitCode: Int32?
    public var attempts: Int
    public var commandUsed: String?
    public var reason: String?
}

/// Runs one run to its end (SPEC §4 from "States" on): attempts with retries and backoff,
/// timeouts, `on_failure` between attempts, fallbacks, the circuit breaker. Every state change is
/// committed to the store before the next step, so a crash leaves a record of where it stopped.
///
/// Generic over the clock (timeouts, backoff) and given a random source (jitter), so that tests
/// run in virtual time with exact backoff sequences.
public struct RunExecutor<C: Clock>: Sendable where C.Duration == Duration {
    public let store: any Store
    public let clock: C
    /// The wall clock, for the timestamps recorded.
    public let now: @Sendable () -> Date
    /// Uniform in [0, 1): the jitter of backoff delays.
    public let random: @Sendable () -> Double
    /// Where attempt logs go (`AttemptLogs`).
    public let logDirectory: String
    /// The environment jobs inherit (SPEC §4: the launching process's).
    public var baseEnvironment: [String: String] = ProcessInfo.processInfo.environment
    /// Output as it arrives, for `belfry run`'s terminal.
    public var echo: (@Sendable (UnsafeRawBufferPointer) -> Void)?
    /// The queues runs wait in; share one gate between all the runs of a process.
    public let queues: QueueGate<C>
    /// Set while the daemon shuts down or fences itself: runs cancelled then are interrupted,
    /// not cancelled — they go back to `queued` and are resumed (SPEC §4, "Interruptions").
    public let interrupting = InterruptFlag()
    /// The runs on their way to their first process: what an attempt does after its process
    /// started waits for them (`LaunchWave`).
    public var launches = LaunchWave()
    /// Whether the daemon may still trust its lease (on a shared store). An attempt that ends
    /// while it may not (taken down by the fence or the attempt guard, or just then) was
    /// interrupted: its run goes back to the queue, for whoever owns it next.
    public var leaseTrusted: @Sendable () -> Bool = { true }
    /// Where jobs' `belfry step` reads and records, when the launching process serves one;
    /// without it, jobs open the store named by `BELFRY_DATABASE` themselves.
    public var steps: StepChannel?
    /// Told of every attempt, retry, timeout, circuit change and queue wait as it happens.
    public var events: @Sendable (ExecutorEvent) -> Void = { _ in }

    public init(
        store: any Store, clock: C, now: @escaping @Sendable () -> Date, random: @escaping @Sendable () -> Double,
        logDirectory: String, queues: QueueGate<C>? = nil
    ) {
        (self.store, self.clock, self.now, self.random, self.logDirectory) = (store, clock, now, random, logDirectory)
        self.queues = queues ?? QueueGate(limits: [:], clock: clock)
    }

    /// The delay before attempt `k + 1` after `k` failed attempts: `min(max, initial ·
    /// multiplier^(k-1))`, then ± `jitter` of itself.
    public static func backoff(_ policy: BackoffPolicy, afterAttempt k: Int, random: Double) -> Duration {
        let base = min(Double(policy.maxMilliseconds), Double(policy.initialMilliseconds) * pow(policy.multiplier, Double(k - 1)))
        let jittered = base * (1 + policy.jitter * (2 * random - 1))
        return .milliseconds(Int64(max(0, jittered).rounded()))
    }

    public func run(_ request: RunRequest) async throws -> RunResult {
        let task = request.task
        let triggerName = request.trigger?.name
        let events = self.events
        // Whatever way the run goes, it is no longer on its way to a process once this returns.
        defer { request.launchTicket?.leave() }
        let given = request.trigger.map { JobEnvironment.triggerInputs($0, slot: request.slot) } ?? request.inputs

        // The circuit breaker decides first: an open circuit skips the run.
        var circuit = CircuitState.closed
        if let breaker = task.circuitBreaker {
            circuit = try await store.circuitState(task: task.fullName)
            if circuit.phase == .open, let opened = circuit.openedAt,
                now().timeIntervalSince(opened) * 1000 < Double(breaker.cooldownMilliseconds)
            {
                let id: Int64
                if let existing = request.runID {
                    try await store.finishRun(existing, state: .skipped, reason: "circuit_open", exitCode: nil, commandUsed: nil, at: now())
                    id = existing
                } else {
                    id = try await store.recordRunNotRun(task: task.fullName, trigger: triggerName, slot: request.slot, origin: request.origin,
                                                   state: .skipped, reason: "circuit_open", at: now())
                }
                return RunResult(runID: id, state: .skipped, exitCode: nil, attempts: 0, commandUsed: nil, reason: "circuit_open")
            }
            if circuit.phase == .open {
                circuit.phase = .probing
                try await store.setCircuitState(circuit, task: task.fullName)
                events(.circuitChanged(task: task.fullName, phase: "half_open", consecutiveFailures: circuit.consecutiveFailures))
            }
        }

        let runID: Int64
        if let existing = request.runID {
            runID = existing
        } else {
            runID = try await store.createRun(task: task.fullName, trigger: triggerName, slot: request.slot, origin: request.origin, inputs: nil, at: now())
        }
        let label = RunLabel(task: task.fullName, trigger: triggerName, run: runID, slot: request.slot)
        var result: RunResult
        let queue = request.trigger?.queue ?? task.queue
        let maxWait = task.timeout.maxQueuedMilliseconds.map { Duration.milliseconds($0) }
        let queuedAt = clock.now.advanced(by: .zero - request.heldFor)
        // A run held back by the scheduler past its max_queued_time is not admitted at all.
        let remaining = maxWait.map { $0 - request.heldFor }
        let ticket = request.launchTicket
        let entered = if let remaining, remaining <= .zero { false } else {
            await queues.enter(queue, maxWait: remaining) { ticket?.leave() }  // a wait: no longer part of a burst
        }
        if entered {
            let placed: Bool
            do {
                placed = try await placeAmongDaemons(queue, run: runID, since: queuedAt, maxWait: maxWait, ticket: ticket)
            } catch {
                await queues.leave(queue)
                throw error
            }
            let waited = queuedAt.duration(to: clock.now)
            guard placed else {
                await queues.leave(queue)
                events(.queueTimedOut(label, queue: queue, waited: waited))
                return try await finish(runID, RunResult(runID: runID, state: .failed, exitCode: nil, attempts: 0, commandUsed: nil,
                                                         reason: "queue_timeout"), task: task, circuit: circuit)
            }
            defer { Task { [store] in try? await store.leaveQueue(run: runID) } }
            if waited >= Self.noticeableWait { events(.queueWaitEnded(label, queue: queue, waited: waited)) }
            do {
                let job = try JobEnvironment(task: task, given: given)
                let user = try task.user.map { name throws(RunPreparationError) in try JobEnvironment.user(name) }
                let started = clock.now
                result = try await attempts(label, request: request, job: job, user: user)
                events(.runEnded(label, state: result.state, duration: started.duration(to: clock.now)))
            } catch let error as RunPreparationError {
                result = RunResult(runID: runID, state: .failed, exitCode: nil, attempts: 0, commandUsed: nil, reason: error.description)
            } catch {
                await queues.leave(queue)
                throw error
            }
            await queues.leave(queue)
        } else {
            events(.queueTimedOut(label, queue: queue, waited: queuedAt.duration(to: clock.now)))
            result = RunResult(runID: runID, state: .failed, exitCode: nil, attempts: 0, commandUsed: nil, reason: "queue_timeout")
        }
        return try await withTaskExecutorPreference(BookkeepingExecutor.shared) { [result, circuit] in
            try await finish(runID, result, task: task, circuit: circuit)
        }
    }

    /// A wait for a queue shorter than this is not reported.
    static var noticeableWait: Duration { .milliseconds(100) }

    /// Waits for a place in `queue` among every daemon sharing the store (on SQLite there at
    /// once), polling: the others free theirs on their own time. False once `maxWait` has
    /// passed since `since`.
    private func placeAmongDaemons(
        _ queue: String, run: Int64, since: C.Instant, maxWait: Duration?, ticket: LaunchWave.Ticket?
    ) async throws -> Bool {
        let limit = await queues.limit(of: queue)
        while try await !store.enterQueue(queue, run: run, limit: limit) {
            if let maxWait, since.duration(to: clock.now) >= maxWait { return false }
            ticket?.leave()  // a wait: no longer part of a burst
            try await clock.sleep(for: .milliseconds(200))
        }
        return true
    }

    /// Records the run's end and what it does to the task's circuit breaker.
    private func finish(_ runID: Int64, _ result: RunResult, task: TaskDefinition, circuit: CircuitState) async throws -> RunResult {
        try await store.finishRun(runID, state: result.state, reason: result.reason, exitCode: result.exitCode,
                                  commandUsed: result.commandUsed, at: now())
        if let breaker = task.circuitBreaker, result.state.isFinal, result.state != .cancelled {
            try await updateCircuit(circuit, breaker: breaker, task: task.fullName, succeeded: result.state == .succeeded)
        }
        return result
    }

    private func updateCircuit(_ state: CircuitState, breaker: CircuitBreakerPolicy, task: String, succeeded: Bool) async throws {
        let before = state.phase
        var state = state
        if succeeded {
            state = .closed
        } else {
            state.consecutiveFailures += 1
            if state.phase == .probing || state.consecutiveFailures >= breaker.failureThreshold {
                state.phase = .open
                state.openedAt = now()
            }
        }
        try await store.setCircuitState(state, task: task)
        if state.phase != before {
            events(.circuitChanged(task: task, phase: state.phase == .open ? "open" : "closed", consecutiveFailures: state.consecutiveFailures))
        }
    }

    /// The primary command with its retries, then each fallback once.
    private func attempts(_ label: RunLabel, request: RunRequest, job: JobEnvironment, user: JobUser?) async throws -> RunResult {
        let task = request.task
        let runID = label.run
        let events = self.events
        let policy = task.retries
        var runner = AttemptRunner(
            clock: clock, maxRuntime: task.timeout.maxRuntimeMilliseconds.map { .milliseconds($0) },
            killGrace: .milliseconds(task.killGraceMilliseconds), maxOutputBytes: Int(task.maxOutputBytes))
        runner.echo = echo
        // The whole environment of its processes: this process's, then the definition's `env`.
        let env = baseEnvironment.merging(request.trigger?.env ?? task.env) { $1 }
        var number = request.previousAttempts
        var last: AttemptOutcome?

        func attempt(_ command: Command, named name: String) async throws -> AttemptOutcome {
            number += 1
            let line = try job.commandLine(command)
            var variables = job.variables(base: env, runID: runID, task: task.fullName, trigger: request.trigger?.name,
                                          slot: request.slot, attempt: number, database: store.location)
            let stepToken = steps?.grant(run: runID)
            defer { if let stepToken { steps?.revoke(stepToken) } }
            if let steps, let stepToken {
                variables["BELFRY_STEP_SOCKET"] = steps.path
                variables["BELFRY_STEP_TOKEN"] = stepToken
            }
            let logPath = AttemptLogs.path(run: runID, attempt: number, in: logDirectory)
            let current = number
            try await store.startAttempt(run: runID, number: current, pid: nil, logPath: logPath, at: now())
            let started = clock.now
            let (maxRuntime, grace) = (runner.maxRuntime ?? .zero, runner.killGrace)
            let outcome = await runner.run(
                AttemptCommand(executable: line.executable, arguments: line.arguments, environment: variables,
                               workingDirectory: task.workingDirectory, user: user),
                logPath: logPath,
                onTimeout: { step in
                    switch step {
                    case .terminated(let pid): events(.timedOut(label, attempt: current, pid: pid, after: maxRuntime, grace: grace))
                    case .killed(let pid): events(.killed(label, attempt: current, pid: pid))
                    }
                }
            ) { [launches] pid in
                request.launchTicket?.leave()
                events(.attemptStarted(label, attempt: current, pid: pid, command: name))
                await launches.settled()
                try await withTaskExecutorPreference(BookkeepingExecutor.shared) {
                    try await store.setAttemptProcess(run: runID, number: current, pid: pid)
                }
            }
            let (code, signal) = outcome.ending.codeAndSignal
            var why: String?
            if case .couldNotStart(let text) = outcome.ending { why = text }
            events(.attemptEnded(label, attempt: current, outcome: outcome.word, exitCode: code, signal: signal, reason: why,
                                 duration: started.duration(to: clock.now)))
            try await withTaskExecutorPreference(BookkeepingExecutor.shared) {
                try await store.finishAttempt(run: runID, number: current, exitCode: code, signal: signal, timedOut: outcome.timedOut,
                                        outputTail: outcome.outputTail, at: now())
            }
            return outcome
        }

        for retry in 0...policy.count {
            let outcome = try await attempt(task.command, named: "primary")
            last = outcome
            if Task.isCancelled || !leaseTrusted() { return cancelled(runID, number, outcome, commandUsed: "primary") }
            if outcome.ending == .exited(0) { return finished(runID, number, outcome, state: .succeeded, reason: nil, commandUsed: "primary") }
            if outcome.isPermanentFailure(policy) || retry == policy.count { break }
            if let hook = task.onFailure {
                let ran = try await onFailure(hook, after: outcome, runner: runner, job: job, env: env, runID: runID, number: number)
                let (code, signal) = ran.ending.codeAndSignal
                events(.onFailureRan(label, attempt: number, exitCode: code, signal: signal))
            }
            let delay = Self.backoff(policy.backoff, afterAttempt: retry + 1, random: random())
            events(.retryScheduled(label, next: number + 1, of: request.previousAttempts + policy.count + 1, delay: delay))
            try await clock.sleep(for: delay)
        }
        for (index, fallback) in task.fallbacks.enumerated() {
            events(.fallbackStarted(label, index: index + 1))
            let outcome = try await attempt(fallback, named: "fallback \(index + 1)")
            if Task.isCancelled || !leaseTrusted() { return cancelled(runID, number, outcome, commandUsed: "fallback \(index + 1)") }
            if outcome.ending == .exited(0) {
                return finished(runID, number, outcome, state: .succeeded, reason: "primary failed; fallback \(index + 1) succeeded", commandUsed: "fallback \(index + 1)")
            }
        }
        let outcome = last!
        return finished(runID, number, outcome, state: outcome.timedOut ? .timedOut : .failed, reason: outcome.reason, commandUsed: nil)
    }

    /// A cancelled run: `cancelled`, or back to `queued` when the daemon is shutting down.
    private func cancelled(_ runID: Int64, _ attempts: Int, _ outcome: AttemptOutcome, commandUsed: String) -> RunResult {
        // A task of a term that ended (its daemon fenced itself and joined again) was interrupted.
        interrupting.isSet || !leaseTrusted() || StoreTerm.current.map { $0 != store.term } == true
            ? finished(runID, attempts, outcome, state: .queued, reason: "interrupted: the daemon stopped or lost its lease; resumed", commandUsed: nil)
            : finished(runID, attempts, outcome, state: .cancelled, reason: "cancelled", commandUsed: commandUsed)
    }

    private func finished(_ runID: Int64, _ attempts: Int, _ outcome: AttemptOutcome, state: RunState, reason: String?, commandUsed: String?) -> RunResult {
        RunResult(runID: runID, state: state, exitCode: outcome.ending.codeAndSignal.code, attempts: attempts, commandUsed: commandUsed, reason: reason)
    }

    /// Runs the task's `on_failure` command, with the failure in its environment and the task's
    /// limits; its output goes to a log beside the attempt's. Its own failure is reported and
    /// otherwise ignored.
    private func onFailure(_ command: Command, after outcome: AttemptOutcome, runner: AttemptRunner<C>, job: JobEnvironment,
                           env: [String: String], runID: Int64, number: Int) async throws -> AttemptOutcome {
        var variables = job.variables(base: env, runID: runID, task: "", trigger: nil, slot: nil, attempt: number, database: store.location)
        variables["BELFRY_ERROR"] = outcome.reason
        variables["BELFRY_EXIT_CODE"] = outcome.ending.codeAndSignal.code.map(String.init) ?? ""
        let line = try job.commandLine(command)
        var runner = runner
        runner.echo = nil
        return await runner.run(
            AttemptCommand(executable: line.executable, arguments: line.arguments, environment: variables, workingDirectory: nil, user: nil),
            logPath: AttemptLogs.path(run: runID, attempt: number, kind: "on_failure.log", in: logDirectory)
        ) { _ in }
    }
}

extension AttemptOutcome.Ending {
    var codeAndSignal: (code: Int32?, signal: Int32?) {
        switch self {
        case .exited(let code): (code, nil)
        case .signalled(let signal): (nil, signal)
        case .couldNotStart: (nil, nil)
        }
    }
}

extension AttemptOutcome {
    /// Failures that another attempt cannot fix: the process could not start, or it exited with
    /// one of the policy's no-retry codes. Timeouts and signals are retried.
    func isPermanentFailure(_ policy: RetryPolicy) -> Bool {
        switch ending {
        case .couldNotStart: true
        case .exited(let code): !timedOut && policy.noRetryExitCodes.contains(code)
        case .signalled: false
        }
    }

    /// The failure in words, for the run's reason and `BELFRY_ERROR`.
    var reason: String {
        if timedOut { return "timed out" }
        switch ending {
        case .exited(let code): return "exit code \(code)"
        case .signalled(let signal): return "killed by signal \(signal) (\(String(cString: strsignal(signal))))"
        case .couldNotStart(let why): return why
        }
    }
}

/// A flag read from any task.
public final class InterruptFlag: Sendable {
    private let value = Mutex(false)

    public init() {}

    public var isSet: Bool { value.withLock { $0 } }

    /// Sets the flag; returns whether it was set already.
    @discardableResult
    public func set() -> Bool {
        value.withLock { was in
            defer { was = true }
            return was
        }
    }

    public func clear() { value.withLock { $0 = false } }
}
