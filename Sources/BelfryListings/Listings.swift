import BelfrySchedule
import BelfryStore
import Foundation

/// What the CLI's `--json` and the HTTP API print for each record: one definition of each
/// object, so that the two cannot differ. Field names are a stable interface; instants are UTC
/// RFC 3339, durations seconds.
public enum Listing {
    /// `trigger list` / `trigger show`.
    public static func trigger(_ status: TriggerStatus, nextSlot: Instant?) -> JSONValue {
        let schedule = status.schedule
        let lastRun = status.lastRun.map { run in
            JSONValue.object([("id", .int(run.id)), ("state", .string(run.state)), ("slot", .optional(run.slot?.rfc3339))])
        }
        return .object([
            ("task", .string(status.task)), ("trigger", .string(status.trigger)), ("kind", .string(schedule.kind)),
            ("schedule", .string(schedule.text)), ("resolved_schedule", .string(status.resolvedSchedule)),
            ("timezone", .string(schedule.timezone)), ("active", .bool(status.active)),
            ("next_slot", .optional(nextSlot?.rfc3339)), ("last_run", lastRun ?? .null), ("owner", .optional(status.owner)),
            ("updated_by", .optional(status.updatedBy)),
            ("updated_at", .string(Instant(secondsSinceEpoch: Int64(status.updatedAt.timeIntervalSince1970)).rfc3339)),
        ])
    }

    /// `runs`.
    public static func run(_ run: RunRecord) -> JSONValue {
        .object([
            ("id", run.id.map(JSONValue.int) ?? .null), ("task", .string(run.task)), ("trigger", .optional(run.trigger)),
            ("slot", .optional(run.slot?.rfc3339)), ("origin", .string(run.origin.rawValue)), ("state", .string(run.state.rawValue)),
            ("reason", .optional(run.reason)), ("attempts", .int(Int64(run.attempts))), ("exit_code", run.exitCode.map { .int(Int64($0)) } ?? .null),
            ("queued_at", .string(rfc3339(run.queuedAt))), ("started_at", .optional(run.startedAt.map(rfc3339))),
            ("finished_at", .optional(run.finishedAt.map(rfc3339))), ("command_used", .optional(run.commandUsed)),
            ("node", .optional(run.node)),
        ])
    }

    /// `runs show`: the run, its attempts and its steps.
    public static func runDetail(_ details: (run: RunRecord, attempts: [AttemptRecord], steps: [StepRecord])) -> JSONValue {
        guard case .object(var members) = run(details.run) else { return .null }
        members.append(("attempt_list", .array(details.attempts.map(attempt))))
        members.append(("steps", .array(details.steps.map { step in
            .object([("name", .string(step.name)), ("exit_code", .int(Int64(step.exitCode))), ("finished_at", .string(rfc3339(step.finishedAt)))])
        })))
        return .object(members)
    }

    public static func attempt(_ attempt: AttemptRecord) -> JSONValue {
        .object([
            ("number", .int(Int64(attempt.number))), ("started_at", .string(rfc3339(attempt.startedAt))),
            ("finished_at", .optional(attempt.finishedAt.map(rfc3339))), ("pid", attempt.pid.map { .int(Int64($0)) } ?? .null),
            ("exit_code", attempt.exitCode.map { .int(Int64($0)) } ?? .null), ("signal", attempt.signal.map { .int(Int64($0)) } ?? .null),
            ("timed_out", .bool(attempt.timedOut)),
            ("output_tail", .optional(attempt.outputTail.map { String(decoding: $0, as: UTF8.self) })),
            ("log_path", .optional(attempt.logPath)),
        ])
    }

    /// `stats`.
    public static func statistics(_ s: TaskStatistics) -> JSONValue {
        func seconds(_ value: Double?) -> JSONValue { value.map { .number($0) } ?? .null }
        return .object([
            ("task", .string(s.task)), ("runs", .int(Int64(s.runs))), ("success_rate", .number(s.successRate)),
            ("mean_attempts", .number(s.meanAttempts)), ("retry_rate", .number(s.retryRate)),
            ("p50_duration", seconds(s.p50Duration)), ("p95_duration", seconds(s.p95Duration)),
        ])
    }

    /// `nodes`.
    public static func node(_ node: NodeRecord) -> JSONValue {
        .object([
            ("name", .string(node.name)), ("id", .string(node.id)), ("host", .string(node.host)), ("pid", .int(Int64(node.pid))),
            ("started_at", .string(rfc3339(node.startedAt))), ("lease_until", .string(rfc3339(node.leaseUntil))),
            ("running", .int(Int64(node.running))),
        ])
    }

    /// UTC RFC 3339 with milliseconds when there are any: event times, unlike slots, are not whole seconds.
    public static func rfc3339(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        let fraction = Int(((milliseconds % 1000) + 1000) % 1000)
        // Bytes, not String(format:): a page of 50 runs formats 150 of these.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        Instant.appendRFC3339(of: (milliseconds - Int64(fraction)) / 1000, offset: nil, to: &bytes)
        if fraction != 0 {
            bytes.removeLast()  // the Z
            bytes += [UInt8(ascii: "."), UInt8(ascii: "0") + UInt8(fraction / 100), UInt8(ascii: "0") + UInt8(fraction / 10 % 10),
                      UInt8(ascii: "0") + UInt8(fraction % 10), UInt8(ascii: "Z")]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension Listing {
    /// `next`: a slot with its wall-clock time in `zone` and its DST marker.
    /// `skipped`: the first matching time a DST gap took away just before this slot.
    public static func slot(_ slot: Instant, zone: ZoneRules, skipped: String? = nil) -> JSONValue {
        let wall = zone.wallClock(at: slot)
        var local: [UInt8] = []
        Instant.appendRFC3339(of: wall.local, offset: wall.offset, to: &local)
        return .object([
            ("slot", .string(slot.rfc3339)), ("local", .string(String(decoding: local, as: UTF8.self))),
            ("abbreviation", .string(wall.abbreviation)), ("marker", .optional(wall.marker?.rawValue)),
            ("skipped", .optional(skipped)),
        ])
    }
}

extension JSONValue {
    /// The value as bytes without spaces, with a final newline: the HTTP API's answers.
    public var compactBytes: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4096)
        write(to: &bytes, pretty: false)
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }
}
