import BelfrySchedule
import BelfryStore

/// The run an executor event is about.
public struct RunLabel: Sendable, Hashable {
    public var task: String
    /// nil for a run started by hand or over HTTP.
    public var trigger: String?
    public var run: Int64
    public var slot: Instant?
}

/// What happens inside a run, as it happens: the daemon logs one line per event and counts
/// them in `/metrics`.
public enum ExecutorEvent: Sendable {
    /// The run had to wait for a place in its queue, and got one.
    case queueWaitEnded(RunLabel, queue: String, waited: Duration)
    /// The run waited its `max_queued_time` for a place and gave up.
    case queueTimedOut(RunLabel, queue: String, waited: Duration)
    /// A process started. `command`: `primary` or `fallback N`.
    case attemptStarted(RunLabel, attempt: Int, pid: Int32, command: String)
    /// An attempt ended; `outcome` is `succeeded`, `failed`, `timed_out`, `killed` (by a signal)
    /// or `not_started`.
    case attemptEnded(RunLabel, attempt: Int, outcome: String, exitCode: Int32?, signal: Int32?, reason: String?, duration: Duration)
    /// The attempt ran past `max_runtime`: SIGTERM went to its process group.
    case timedOut(RunLabel, attempt: Int, pid: Int32, after: Duration, grace: Duration)
    /// The group was still there after the grace: SIGKILL went to it.
    case killed(RunLabel, attempt: Int, pid: Int32)
    /// Attempt `next` of `of` will start after `delay`.
    case retryScheduled(RunLabel, next: Int, of: Int, delay: Duration)
    /// The primary command failed for good; fallback `index` (from 1) starts.
    case fallbackStarted(RunLabel, index: Int)
    /// The task's `on_failure` command ran after a failed attempt.
    case onFailureRan(RunLabel, attempt: Int, exitCode: Int32?, signal: Int32?)
    /// The task's circuit breaker changed phase (`open`, `half_open`, `closed`).
    case circuitChanged(task: String, phase: String, consecutiveFailures: Int)
    /// The run ended after its attempts ran, `duration` from the first start to the end.
    case runEnded(RunLabel, state: RunState, duration: Duration)
}

extension AttemptOutcome {
    /// The outcome's word in `belfry_attempts_total{outcome}` and the log.
    var word: String {
        if timedOut { return "timed_out" }
        switch ending {
        case .exited(0): return "succeeded"
        case .exited: return "failed"
        case .signalled: return "killed"
        case .couldNotStart: return "not_started"
        }
    }
}
