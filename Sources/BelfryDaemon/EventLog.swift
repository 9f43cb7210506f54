import BelfrySchedule
import BelfryStore
import Foundation

/// One line per event on standard error: `time level message key=value ...`, or a JSON object
/// per line (`--log-format json`). Under systemd, where stderr is the journal
/// (`$JOURNAL_STREAM`), each line starts with its syslog priority (`<6>`) so that journald
/// files it at the right level.
public struct EventLog: Sendable {
    public enum Format: String, Sendable, CaseIterable {
        case text, json
    }

    public enum Level: Int, Sendable {
        case error = 3, warning = 4, notice = 5, info = 6

        var name: String {
            switch self {
            case .error: "error"
            case .warning: "warning"
            case .notice: "notice"
            case .info: "info"
            }
        }
    }

    let format: Format
    let journal: Bool
    let lock = NSLock()

    public init(format: Format, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.format = format
        self.journal = !(environment["JOURNAL_STREAM"] ?? "").isEmpty
    }

    /// Writes one event: a short constant message, the variables as metadata.
    public func write(_ level: Level, _ message: String, _ metadata: [(String, String)] = []) {
        var line = journal ? "<\(level.rawValue)>" : ""
        let time = Instant(Date()).rfc3339
        switch format {
        case .text:
            line += "\(time) \(level.name) \(message)"
            for (key, value) in metadata {
                line += " \(key)=" + (value.contains(" ") || value.isEmpty ? "\"\(value)\"" : value)
            }
        case .json:
            var object: [String: String] = ["time": time, "level": level.name, "message": message]
            for (key, value) in metadata { object[key] = value }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            line += String(decoding: (try? encoder.encode(object)) ?? Data(), as: UTF8.self)
        }
        lock.withLock { FileHandle.standardError.write(Data((line + "\n").utf8)) }
    }

    /// The line of a scheduler event.
    public func write(_ event: SchedulerEvent) {
        switch event {
        case .scheduled(let triggers, let next, _):
            write(.info, "schedule loaded", [("triggers", String(triggers)), ("next_slot", next?.rfc3339 ?? "none")])
        case .queued(let task, let trigger, let slot, let run, let origin):
            write(.info, "run queued", [("task", task), ("trigger", trigger), ("slot", slot.rfc3339), ("run", String(run)), ("origin", origin.rawValue)])
        case .finished(let task, let trigger, let run, let state, let reason):
            write(state == .succeeded ? .info : .warning, "run finished",
                  [("task", task), ("trigger", trigger), ("run", String(run)), ("state", state.rawValue)] + (reason.map { [("reason", $0)] } ?? []))
        case .notRun(let task, let trigger, let slot, let state, let reason):
            write(.warning, state == .missed ? "slot missed" : "slot skipped",
                  [("task", task), ("trigger", trigger), ("slot", slot.rfc3339), ("reason", reason)])
        case .failedToRun(let task, let trigger, let run, let reason):
            write(.error, "run could not be executed", [("task", task), ("trigger", trigger), ("run", String(run)), ("reason", reason)])
        case .unschedulable(let task, let trigger, let reason):
            write(.error, "trigger cannot be scheduled", [("task", task), ("trigger", trigger), ("reason", reason)])
        case .resumed(let task, let trigger, let run, let attempts):
            write(.warning, "run resumed after an interruption", [("task", task), ("trigger", trigger), ("run", String(run)), ("attempts_before", String(attempts))])
        case .clockJump(let seconds):
            write(.warning, "wall clock jumped", [("seconds", String(format: "%+.0f", seconds))])
        }
    }
}
