import BelfrySchedule

/// What to run: an argument vector, or a string for `/bin/sh -c`.
public enum Command: Hashable, Sendable, Codable {
    case arguments([String])
    case shell(String)
}

/// A declared input of a task.
public struct Param: Hashable, Sendable, Codable {
    public var name: String
    public var required: Bool
    public var defaultValue: String?
}

/// A value given to a task input by a trigger: a literal, or the slot's instant.
public enum InputValue: Hashable, Sendable, Codable {
    case literal(String)
    /// The sentinel `trigger_time`: the slot's UTC instant in RFC 3339.
    case triggerTime
}

/// Delays between attempts: `min(max, initial · multiplier^(k-1))`, then ± `jitter` (a fraction).
public struct BackoffPolicy: Hashable, Sendable, Codable {
    public var initialMilliseconds: Int64 = 1000
    public var multiplier: Double = 2
    public var maxMilliseconds: Int64 = 300_000
    public var jitter: Double = 0.5
    public init() {}
}

/// How often and when a failed run is tried again (SPEC §4).
public struct RetryPolicy: Hashable, Sendable, Codable {
    /// Retries after the first attempt: `count + 1` attempts in all.
    public var count = 0
    public var backoff = BackoffPolicy()
    /// Exit codes that fail the run at once (usage errors, command not found, ...).
    public var noRetryExitCodes: [Int32] = [64, 65, 66, 67, 68, 77, 78, 126, 127]
    public init() {}
}

/// Limits on one attempt's running time and on a run's time waiting in its queue.
public struct TimeoutPolicy: Hashable, Sendable, Codable {
    public var maxRuntimeMilliseconds: Int64?
    public var maxQueuedMilliseconds: Int64?
    public init() {}
}

/// What a trigger does with slots missed during downtime or a forward clock jump.
public struct CatchUpPolicy: Hashable, Sendable, Codable {
    public enum Mode: String, Hashable, Sendable, Codable, CaseIterable {
        case none, latest, all
    }
    public var mode: Mode = .latest
    /// With `all`: at most this many missed slots are run.
    public var limit = 100
    public init() {}
}

/// What happens when a slot comes while the trigger's previous run is still running.
public enum OverlapPolicy: String, Hashable, Sendable, Codable, CaseIterable {
    case allow, forbid, replace
}

/// Opt-in per task: after `failureThreshold` consecutive failed runs, slots are skipped until
/// `cooldown` passes; then one probe run decides.
public struct CircuitBreakerPolicy: Hashable, Sendable, Codable {
    public var failureThreshold: Int
    public var cooldownMilliseconds: Int64
}

/// How a trigger's slots are computed.
public enum TriggerSchedule: Hashable, Sendable, Codable {
    case cron(expression: String, timezone: String, skipped: DSTPolicy.Skipped, repeated: DSTPolicy.Repeated)
    case every(intervalSeconds: Int64, startTime: Instant?, timezone: String)

    /// `cron` or `every`, as in `trigger list --json`.
    public var kind: String {
        switch self {
        case .cron: "cron"
        case .every: "every"
        }
    }

    /// The expression, or the interval as a duration (`90m`).
    public var text: String {
        switch self {
        case .cron(let expression, _, _, _): return expression
        case .every(let seconds, _, _):
            var parts: [String] = []
            var rest = seconds
            for (unit, size) in [("d", Int64(86400)), ("h", 3600), ("m", 60), ("s", 1)] where rest >= size {
                parts.append("\(rest / size)\(unit)")
                rest %= size
            }
            return parts.joined()
        }
    }

    /// Whether slots fall between whole minutes (a seconds field other than `0`; a rate in
    /// seconds or anchored at an instant with seconds): listings then show seconds.
    public var slotsBetweenMinutes: Bool {
        switch self {
        case .cron(let expression, _, _, _):
            let fields = expression.split(whereSeparator: { $0 == " " || $0 == "\t" })
            return fields.count == 6 && Int(fields[0]) != 0
        case .every(let seconds, let start, _):
            return seconds % 60 != 0 || (start?.secondsSinceEpoch ?? 1) % 60 != 0
        }
    }

    /// Whether a cron expression holds Jenkins' `H`: its slots depend on the trigger's name.
    public var isHashed: Bool {
        if case .cron(let expression, _, _, _) = self { return expression.contains { $0 == "H" || $0 == "h" } }
        return false
    }

    /// The hash key of trigger `name` of task `task` (`ENV.TASK`).
    public static func hashKey(task: String, trigger name: String) -> String { "\(task) \(name)" }

    public var timezone: String {
        switch self {
        case .cron(_, let zone, _, _), .every(_, _, let zone): zone
        }
    }

    /// The slots of this schedule for the trigger `hashKey` (`ENV.TASK TRIGGER`, which places
    /// its `H` items) activated at `activation`.
    public func slots(activatedAt activation: Instant, hashKey: String, zones: TimeZoneDatabase = .system) throws -> any SlotSchedule {
        switch self {
        case .cron(let expression, let zone, let skipped, let repeated):
            return try CronSchedule(
                parsing: expression, zone: zones.rules(for: zone), dst: DSTPolicy(skipped: skipped, repeated: repeated), hashKey: hashKey)
        case .every(let interval, let start, _):
            return try FixedRate(interval: interval, startTime: start).schedule(activatedAt: activation)
        }
    }
}

extension Instant: Codable {
    public init(from decoder: any Decoder) throws {
        self.init(secondsSinceEpoch: try decoder.singleValueContainer().decode(Int64.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(secondsSinceEpoch)
    }
}

extension DSTPolicy.Skipped: Codable {}
extension DSTPolicy.Repeated: Codable {}
