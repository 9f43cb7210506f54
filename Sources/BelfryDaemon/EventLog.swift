import BelfryExecutor
import BelfrySchedule
import BelfryStore
import Foundation
import Logging

/// swift-log's handler for the daemon: one line per event on standard error,
/// `time level message key=value ...` or one JSON object per line. Where stderr is the journal
/// (`$JOURNAL_STREAM`), each line starts with its syslog priority (`<6>`), so that journald files
/// it at the right level.
public struct BelfryLogHandler: LogHandler {
    public enum Format: String, Sendable, CaseIterable {
        case text, json
    }

    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    let format: Format
    let journal: Bool
    /// Where lines go: standard error, but for tests.
    let output: Int32
    private static let writing = NSLock()

    public init(format: Format, environment: [String: String] = ProcessInfo.processInfo.environment, output: Int32 = 2) {
        self.format = format
        self.journal = !(environment["JOURNAL_STREAM"] ?? "").isEmpty
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        var line = journal ? "<\(Self.priority(event.level))>" : ""
        let time = Instant(Date()).rfc3339
        switch format {
        case .text:
            line += "\(time) \(event.level) \(event.message)"
            for (key, value) in all.sorted(by: { $0.key < $1.key }) {
                let text = "\(value)"
                line += " \(key)=" + (text.isEmpty || text.utf8.contains(UInt8(ascii: " ")) ? "\"\(text)\"" : text)
            }
        case .json:
            var object = ["time": time, "level": "\(event.level)", "message": "\(event.message)"]
            for (key, value) in all { object[key] = "\(value)" }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            line += String(decoding: (try? encoder.encode(object)) ?? Data(), as: UTF8.self)
        }
        line += "\n"
        Self.writing.withLock {
            line.withUTF8 { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = write(output, bytes.baseAddress! + offset, bytes.count - offset)
                    if written > 0 {
                        offset += written
                    } else if written < 0, errno == EINTR {
                        continue
                    } else {
                        break  // stderr is gone: nothing to tell it
                    }
                }
            }
        }
    }

    /// syslog priorities, as journald reads them from a `<N>` prefix.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }
}

extension Logger {
    /// The line of a scheduler event: a short constant message, the variables as metadata.
    public func log(_ event: SchedulerEvent) {
        switch event {
        case .scheduled(let triggers, let next, let changed):
            log(level: changed ? .info : .debug, "schedule loaded", metadata: ["triggers": "\(triggers)", "next_slot": "\(next?.rfc3339 ?? "none")"])
        case .queued(let task, let trigger, let slot, let run, let origin):
            info("run queued", metadata: ["task": "\(task)", "trigger": "\(trigger)", "slot": "\(slot.rfc3339)", "run": "\(run)", "origin": "\(origin.rawValue)"])
        case .finished(let task, let trigger, let run, let state, let reason):
            var metadata: Logger.Metadata = ["task": "\(task)", "trigger": "\(trigger)", "run": "\(run)", "state": "\(state.rawValue)"]
            if let reason { metadata["reason"] = "\(reason)" }
            log(level: state == .succeeded ? .info : .warning, "run finished", metadata: metadata)
        case .notRun(let task, let trigger, let slot, let state, let reason):
            warning(state == .missed ? "slot missed" : "slot skipped",
                    metadata: ["task": "\(task)", "trigger": "\(trigger)", "slot": "\(slot.rfc3339)", "reason": "\(reason)"])
        case .failedToRun(let task, let trigger, let run, let reason):
            error("run could not be executed", metadata: ["task": "\(task)", "trigger": "\(trigger)", "run": "\(run)", "reason": "\(reason)"])
        case .activationChanged(let task, let trigger, let active, let by):
            notice(active ? "trigger activated" : "trigger deactivated", metadata: ["task": "\(task)", "trigger": "\(trigger)", "by": "\(by ?? "-")"])
        case .activationsChanged(let activated, let deactivated):
            notice("active triggers changed", metadata: ["activated": "\(activated)", "deactivated": "\(deactivated)"])
        case .unschedulable(let task, let trigger, let reason):
            error("trigger cannot be scheduled", metadata: ["task": "\(task)", "trigger": "\(trigger)", "reason": "\(reason)"])
        case .resumed(let task, let trigger, let run, let attempts):
            warning("run resumed after an interruption", metadata: ["task": "\(task)", "trigger": "\(trigger)", "run": "\(run)", "attempts_before": "\(attempts)"])
        case .fenced(let reason):
            critical("fenced: attempts taken down, claiming stopped until the node joins again", metadata: ["reason": "\(reason)"])
        case .joined(let node):
            notice("joined as a new node", metadata: ["node": "\(node)"])
        case .nodeTakenOver(let node):
            warning("node lost and taken over", metadata: ["node": "\(node)"])
        case .cancelRequested(let run):
            notice("run cancelled at another node's request (overlap replace)", metadata: ["run": "\(run)"])
        case .staleWriteRefused(let run, let reason):
            warning("stale write refused", metadata: ["run": "\(run)", "reason": "\(reason)"])
        case .clockJump(let seconds):
            warning("wall clock jumped", metadata: ["seconds": "\(String(format: "%+.0f", seconds))"])
        case .storeFailed(let reason):
            critical("the database failed; no slot is recorded or run until it works again (retrying every second)",
                     metadata: ["reason": "\(reason)"])
        case .storeRecovered:
            notice("the database works again; slots missed meanwhile follow their catch-up policy")
        case .orphansTerminated(let groups):
            warning("took down process groups left running by a killed daemon", metadata: ["groups": "\(groups.map(String.init).joined(separator: ","))"])
        }
    }
}

extension Logger {
    /// The line of an executor event: what happened inside a run, with `task`, `trigger`,
    /// `run` and `attempt` in the metadata. Warning and above: what deserves attention.
    public func log(_ event: ExecutorEvent) {
        func about(_ label: RunLabel, _ attempt: Int? = nil) -> Logger.Metadata {
            var metadata: Logger.Metadata = ["task": "\(label.task)", "trigger": "\(label.trigger ?? "")", "run": "\(label.run)"]
            if let attempt { metadata["attempt"] = "\(attempt)" }
            return metadata
        }
        switch event {
        case .queueWaitEnded(let label, let queue, let waited):
            info("queue wait ended", metadata: about(label).merging(["queue": "\(queue)", "waited": "\(Self.seconds(waited))"]) { $1 })
        case .queueTimedOut(let label, let queue, let waited):
            warning("queue wait timed out: the run failed without starting",
                    metadata: about(label).merging(["queue": "\(queue)", "waited": "\(Self.seconds(waited))"]) { $1 })
        case .attemptStarted(let label, let attempt, let pid, let command):
            info("attempt started", metadata: about(label, attempt).merging(["pid": "\(pid)", "command": "\(command)"]) { $1 })
        case .attemptEnded(let label, let attempt, let outcome, let code, let signal, let reason, let duration):
            var metadata = about(label, attempt)
            metadata["outcome"] = "\(outcome)"
            if let code { metadata["exit_code"] = "\(code)" }
            if let signal { metadata["signal"] = "\(Self.signalName(signal))" }
            if let reason { metadata["reason"] = "\(reason)" }
            metadata["duration"] = "\(Self.seconds(duration))"
            log(level: outcome == "succeeded" ? .info : .warning, outcome == "succeeded" ? "attempt ended" : "attempt failed", metadata: metadata)
        case .timedOut(let label, let attempt, let pid, let after, let grace):
            warning("attempt timed out: SIGTERM sent to its process group",
                    metadata: about(label, attempt).merging([
                        "pid": "\(pid)", "max_runtime": "\(Self.seconds(after))", "sigkill_after": "\(Self.seconds(grace))",
                    ]) { $1 })
        case .killed(let label, let attempt, let pid):
            warning("SIGKILL sent: the process group outlived its grace after SIGTERM", metadata: about(label, attempt).merging(["pid": "\(pid)"]) { $1 })
        case .retryScheduled(let label, let next, let of, let delay):
            info("retry scheduled", metadata: about(label).merging([
                "next_attempt": "\(next)", "of": "\(of)", "in": "\(Self.seconds(delay))",
            ]) { $1 })
        case .fallbackStarted(let label, let index):
            notice("the primary command failed: fallback starting", metadata: about(label).merging(["fallback": "\(index)"]) { $1 })
        case .onFailureRan(let label, let attempt, let code, let signal):
            var metadata = about(label, attempt)
            if let code { metadata["exit_code"] = "\(code)" }
            if let signal { metadata["signal"] = "\(Self.signalName(signal))" }
            info("on_failure ran", metadata: metadata)
        case .circuitChanged(let task, let phase, let failures):
            let metadata: Logger.Metadata = ["task": "\(task)", "consecutive_failures": "\(failures)"]
            switch phase {
            case "open": error("circuit opened: runs are skipped until the cooldown ends", metadata: metadata)
            case "half_open": notice("circuit half-open: one run tries", metadata: metadata)
            default: notice("circuit closed", metadata: metadata)
            }
        case .runEnded:
            break  // the scheduler's `run finished` line says it
        }
    }

    /// `2.413s`, rounded to the millisecond. (Not `String(format:)`: a few lines per run, and
    /// Foundation's formatting was a visible share of the daemon's CPU in a burst.)
    static func seconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let total = seconds * 1000 + (attoseconds + (attoseconds < 0 ? -500_000_000_000_000 : 500_000_000_000_000)) / 1_000_000_000_000_000
        let milliseconds = total.magnitude % 1000
        let padding = milliseconds < 10 ? "00" : milliseconds < 100 ? "0" : ""
        return "\(total < 0 ? "-" : "")\(total.magnitude / 1000).\(padding)\(milliseconds)s"
    }

    /// `SIGKILL (9)`.
    static func signalName(_ signal: Int32) -> String {
        let names: [Int32: String] = [SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGABRT: "SIGABRT", SIGKILL: "SIGKILL",
                                      SIGSEGV: "SIGSEGV", SIGPIPE: "SIGPIPE", SIGTERM: "SIGTERM", SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGILL: "SIGILL"]
        return names[signal].map { "\($0) (\(signal))" } ?? "\(signal)"
    }
}
