import ArgumentParser
import BelfryListings
import BelfrySchedule
import Foundation

/// `belfry next`: the next slots of a cron expression or a fixed rate (SPEC §1.5).
struct Next: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "next",
        abstract: "Print the next slots of a cron expression or a fixed rate.",
        discussion: """
            Each line starts with the slot's UTC instant in RFC 3339, then the wall-clock time in the \
            zone with its offset and abbreviation, then a marker when the slot is the first instant \
            after a DST gap (after-dst-gap) or inside a repeated hour (repeated-first, repeated-second). \
            A slot that follows a day whose matching times a DST gap skipped says so \
            (skipped-in-dst-gap=2027-03-14T02:30).

            H (Jenkins' hash) needs --hash-key; the resolved expression goes to standard error.

            Examples:
              belfry next "30 2 * * *" --timezone America/New_York --after 2026-03-07 --count 3
              belfry next daily --timezone Europe/Berlin
              belfry next --every 90m --start-time 2026-01-01T00:00:00Z --count 5
            """
    )

    @Argument(help: "A cron expression (5 or 6 fields, or a macro such as @daily), or a predefined trigger: minutely, hourly, daily, weekly, monthly.")
    var expression: String?

    @Option(help: "A fixed rate instead of a cron expression: 30s, 90m, 6h, 1h30m.")
    var every: String?

    @Option(name: .customLong("start-time"), help: "With --every: slots are START + k·interval (RFC 3339, or a local date-time in --timezone).")
    var startTime: String?

    // Defaults are said in the help rather than given to ArgumentParser, which would describe
    // them at every parse (a reflection of the value's type: a million instructions).
    @Option(name: .customLong("timezone"), help: "IANA time zone the expression is read in. Default: UTC.")
    var givenTimezone: String?
    var timezone: String { givenTimezone ?? "UTC" }

    @Option(help: "Print slots strictly after this time (RFC 3339, local date-time in --timezone, or @EPOCH). Default: now.")
    var after: String?

    @Option(name: .customLong("count"), parsing: .unconditional, help: "How many slots to print (1 to 1000000). Default: 10.")
    var givenCount: Int?
    var count: Int { givenCount ?? 10 }

    @Option(name: .customLong("dst-skipped"), help: "A matching time inside a DST gap: skip (default) or shift to the end of the gap.")
    var givenDSTSkipped: String?
    var dstSkipped: String { givenDSTSkipped ?? "skip" }

    @Option(name: .customLong("dst-repeated"), help: "A matching time shown twice: once (default, the first occurrence) or twice.")
    var givenDSTRepeated: String?
    var dstRepeated: String { givenDSTRepeated ?? "once" }

    @Option(name: .customLong("hash-key"), help: "What places H items: a deployed trigger's is \"ENV.TASK TRIGGER\".")
    var hashKey: String?

    @Flag(help: "Print a JSON array of {slot, local, abbreviation, marker, skipped}.")
    var json = false

    func run() throws {
        guard (1...1_000_000).contains(count) else { throw CommandFailure("--count must be between 1 and 1000000, not \(count)") }
        let zone: ZoneRules
        do { zone = try TimeZoneDatabase.system.rules(for: timezone) } catch { throw CommandFailure(error) }
        let afterInstant = try after.map { try instant($0, zone: zone, field: "--after") }
            ?? Instant(secondsSinceEpoch: Int64(Date().timeIntervalSince1970.rounded(.down)))
        let schedule = try makeSchedule(zone: zone, after: afterInstant)
        var output = SlotPrinter(zone: zone, json: json)
        for (slot, skipped) in MarkedSlots(schedule, zone: zone, after: afterInstant).prefix(count) {
            output.print(slot, skipped: skipped)
        }
        output.finish()
    }

    private func makeSchedule(zone: ZoneRules, after: Instant) throws -> any SlotSchedule {
        switch (expression, every) {
        case (nil, nil):
            throw CommandFailure("give a cron expression (e.g. \"*/15 * * * *\") or --every DURATION")
        case (.some, .some):
            throw CommandFailure("give either a cron expression or --every, not both")
        case (nil, let every?):
            do {
                let interval = try DurationText.wholeSeconds(every, field: "--every")
                let start = try startTime.map { try instant($0, zone: zone, field: "--start-time") }
                return try FixedRate(interval: interval, startTime: start).schedule(activatedAt: after)
            } catch let error as ScheduleError {
                throw CommandFailure(error)
            }
        case (let text?, nil):
            if startTime != nil { throw CommandFailure("--start-time goes with --every, not with a cron expression") }
            guard let skipped = DSTPolicy.Skipped(rawValue: dstSkipped) else {
                throw CommandFailure("--dst-skipped must be skip or shift, not \"\(dstSkipped)\"")
            }
            guard let repeated = DSTPolicy.Repeated(rawValue: dstRepeated) else {
                throw CommandFailure("--dst-repeated must be once or twice, not \"\(dstRepeated)\"")
            }
            let cron = PredefinedTrigger(rawValue: text)?.expression ?? text
            do {
                let schedule = try CronSchedule(parsing: cron, zone: zone, dst: DSTPolicy(skipped: skipped, repeated: repeated), hashKey: hashKey)
                if schedule.expression.resolved != cron {
                    writeToStandardError("belfry: \"\(cron)\" with hash key \"\(hashKey ?? "")\" is \"\(schedule.expression.resolved)\"\n")
                }
                return schedule
            } catch {
                throw CommandFailure(error)
            }
        }
    }

    private func instant(_ text: String, zone: ZoneRules, field: String) throws -> Instant {
        do { return try InstantText.parse(text, zone: zone, field: field) } catch { throw CommandFailure(error) }
    }
}

/// Writes slots to standard output through a buffer, so a million lines stream at full speed.
struct SlotPrinter {
    let zone: ZoneRules
    let json: Bool
    private var buffer: [UInt8] = []
    private var first = true

    init(zone: ZoneRules, json: Bool) {
        self.zone = zone
        self.json = json
        buffer.reserveCapacity(1 << 16)
        if json { buffer.append(UInt8(ascii: "[")) }
    }

    /// `skipped`: the first matching time a DST gap skipped just before this slot.
    mutating func print(_ slot: Instant, skipped: String? = nil) {
        let wall = zone.wallClock(at: slot)
        if json {
            buffer.append(contentsOf: first ? Array("\n  {\"slot\": \"".utf8) : Array(",\n  {\"slot\": \"".utf8))
            Instant.appendRFC3339(of: slot.secondsSinceEpoch, offset: nil, to: &buffer)
            buffer.append(contentsOf: "\", \"local\": \"".utf8)
            Instant.appendRFC3339(of: wall.local, offset: wall.offset, to: &buffer)
            buffer.append(contentsOf: "\", \"abbreviation\": \"".utf8)
            buffer.append(contentsOf: wall.abbreviation.utf8)
            buffer.append(contentsOf: "\", \"marker\": ".utf8)
            buffer.append(contentsOf: wall.marker.map { "\"\($0.rawValue)\"" }?.utf8 ?? "null".utf8)
            buffer.append(contentsOf: ", \"skipped\": ".utf8)
            buffer.append(contentsOf: skipped.map { "\"\($0)\"" }?.utf8 ?? "null".utf8)
            buffer.append(UInt8(ascii: "}"))
        } else {
            Instant.appendRFC3339(of: slot.secondsSinceEpoch, offset: nil, to: &buffer)
            buffer.append(contentsOf: "  ".utf8)
            Instant.appendRFC3339(of: wall.local, offset: wall.offset, to: &buffer)
            buffer.append(UInt8(ascii: " "))
            buffer.append(contentsOf: wall.abbreviation.utf8)
            if let marker = wall.marker {
                buffer.append(contentsOf: "  ".utf8)
                buffer.append(contentsOf: marker.rawValue.utf8)
            }
            if let skipped {
                buffer.append(contentsOf: "  skipped-in-dst-gap=".utf8)
                buffer.append(contentsOf: skipped.utf8)
            }
            buffer.append(UInt8(ascii: "\n"))
        }
        first = false
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func finish() {
        if json { buffer.append(contentsOf: first ? "]\n".utf8 : "\n]\n".utf8) }
        flush()
    }

    private mutating func flush() {
        buffer.withUnsafeBytes(writeToStandardOutput)
        buffer.removeAll(keepingCapacity: true)
    }
}
