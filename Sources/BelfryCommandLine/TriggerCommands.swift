import ArgumentParser
import BelfryConfig
import BelfryListings
import BelfrySchedule
import BelfryStore
import Foundation

/// `belfry trigger list|show|activate|deactivate|delete`.
struct TriggerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trigger", abstract: "List, inspect, activate, deactivate and delete deployed triggers.",
        subcommands: [List.self, Show.self, Activate.self, Deactivate.self, Delete.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List deployed triggers with their next slot and last run.")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "Only the triggers of this task (ENV.TASK).") var task: String?
        @Flag(help: "Print a JSON array.") var json = false

        func run() async throws {
            let statuses = try await database.open(readOnly: true).triggers(task: task)
            let nextSlots = TriggerStatus.nextSlots(of: statuses, after: .now)
            if json { return JSONValue.array(zip(statuses, nextSlots).map(Listing.trigger)).print() }
            var rows = [["TASK", "TRIGGER", "SCHEDULE", "ZONE", "ACTIVE", "NEXT SLOT", "LAST RUN", "OWNER", "UPDATED"]]
            for (status, nextSlot) in zip(statuses, nextSlots) {
                let schedule = status.schedule
                rows.append([
                    status.task, status.trigger, schedule.text, schedule.timezone, status.active ? "yes" : "no",
                    nextSlot.map { localTime($0, zone: schedule.timezone, seconds: schedule.slotsBetweenMinutes) } ?? "-",
                    status.lastRun.map { "#\($0.id) \($0.state)" } ?? "-",
                    status.owner ?? "-", "\(status.updatedBy ?? "-") \(utcMinutes(status.updatedAt))",
                ])
            }
            if statuses.isEmpty {
                printLine("no triggers deployed; `belfry deploy` deploys ./schedules")
            } else {
                printTable(rows)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one trigger and its next slots.")
        @OptionGroup var target: TriggerArguments
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let store = try await target.database.open(readOnly: true)
            let status = try await lookup { try await store.trigger(task: target.task, name: target.trigger) }
            let now = Instant.now
            if json { return Listing.trigger(status, nextSlot: status.nextSlot(after: now)).print() }
            let d = try await store.definition(task: target.task, trigger: target.trigger)
            var lines: [(String, String)] = [
                ("trigger", "\(status.task) \(status.trigger)"), ("kind", d.schedule.kind), ("schedule", d.schedule.text + (status.resolvedSchedule == d.schedule.text ? "" : "  (H resolved: \(status.resolvedSchedule))")),
                ("timezone", d.schedule.timezone), ("active", status.active ? "yes" : "no"),
                ("owner", status.owner ?? "-"), ("updated", "\(status.updatedBy ?? "-") at \(utcMinutes(status.updatedAt))"),
                ("queue", d.queue), ("overlap", d.overlap.rawValue), ("catch_up", d.catchUp.mode.rawValue),
                ("last run", status.lastRun.map { "#\($0.id) \($0.state)\($0.slot.map { " for \($0)" } ?? "")" } ?? "none"),
            ]
            if let description = d.description { lines.insert(("description", description), at: 1) }
            if let description = try? await store.task(named: target.task).description {
                lines.insert(("task", description), at: d.description == nil ? 1 : 2)
            }
            if let next = status.nextSlot(after: now) {
                let schedule = try status.slots()
                var slot = next
                let seconds = status.schedule.slotsBetweenMinutes
                var upcoming = [localTime(next, zone: d.schedule.timezone, seconds: seconds)]
                for _ in 0..<4 {
                    guard let later = schedule.nextSlot(after: slot) else { break }
                    upcoming.append(localTime(later, zone: d.schedule.timezone, seconds: seconds))
                    slot = later
                }
                lines.append(("next slots", upcoming.joined(separator: ", ")))
            }
            let width = lines.map(\.0.count).max() ?? 0
            for (key, value) in lines { printLine(padded(key, to: width) + "  " + value) }
        }
    }

    struct Activate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "activate", abstract: "Activate a trigger (a fixed rate without start_time re-anchors now).")
        @OptionGroup var target: TriggerArguments
        @Option(help: "Who makes the change. Default: $USER.") var by: String?

        func run() async throws {
            let status = try await lookup {
                try await target.database.open().setActive(true, task: target.task, name: target.trigger, by: by ?? currentUser(), now: Date())
            }
            let next = status.nextSlot(after: .now).map { ", next slot \(localTime($0, zone: status.schedule.timezone, seconds: status.schedule.slotsBetweenMinutes))" } ?? ""
            printLine("activated \(target.task) \(target.trigger)\(next)")
        }
    }

    struct Deactivate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "deactivate", abstract: "Deactivate a trigger: no slot fires until it is activated again.")
        @OptionGroup var target: TriggerArguments
        @Option(help: "Who makes the change. Default: $USER.") var by: String?

        func run() async throws {
            _ = try await lookup {
                try await target.database.open().setActive(false, task: target.task, name: target.trigger, by: by ?? currentUser(), now: Date())
            }
            printLine("deactivated \(target.task) \(target.trigger)")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "delete",
            abstract: "Delete a deployed trigger (its runs stay in the history; the next deploy adds it back if it is still defined).")
        @OptionGroup var target: TriggerArguments

        func run() async throws {
            try await lookup { try await target.database.open().deleteTrigger(task: target.task, name: target.trigger) }
            printLine("deleted \(target.task) \(target.trigger)")
        }
    }
}

/// `TASK TRIGGER` and the database, shared by the commands on one trigger.
struct TriggerArguments: ParsableArguments {
    @OptionGroup var database: DatabaseOptions
    @Argument(help: "The task (ENV.TASK).") var task: String
    @Argument(help: "The trigger's name.") var trigger: String
}

/// Runs a store call, turning its errors into one-line failures.
private func lookup<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let failure as CommandFailure {
        throw failure
    } catch {
        throw CommandFailure("\(error)")
    }
}

/// `2026-03-09 02:30 EDT` in the trigger's zone.
func localTime(_ instant: Instant, zone name: String, seconds: Bool = false) -> String {
    guard let zone = try? TimeZoneDatabase.system.rules(for: name) else { return instant.rfc3339 }
    let wall = zone.wallClock(at: instant)
    let text = Instant(secondsSinceEpoch: wall.local).rfc3339  // local seconds shown as if UTC
    return "\(text.prefix(10)) \(text.dropFirst(11).prefix(seconds ? 8 : 5)) \(wall.abbreviation)"
}

/// `2026-11-23 11:24Z`, or with `seconds` `2026-11-23 11:24:05Z`.
func utcMinutes(_ date: Date, seconds: Bool = false) -> String {
    let text = Instant(secondsSinceEpoch: Int64(date.timeIntervalSince1970)).rfc3339
    return "\(text.prefix(10)) \(text.dropFirst(11).prefix(seconds ? 8 : 5))Z"
}

/// `text` followed by spaces up to `width` characters (Foundation's `padding(toLength:...)` goes
/// through NSString: 3.6 % of `belfry trigger list`'s samples in `perf record`).
func padded(_ text: String, to width: Int) -> String {
    let count = text.count
    return count >= width ? text : text + String(repeating: " ", count: width - count)
}

/// Left-aligned columns separated by two spaces.
func printTable(_ rows: [[String]]) {
    var widths = [Int](repeating: 0, count: rows.first?.count ?? 0)
    for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
    var output = ""
    for row in rows {
        let cells = row.enumerated().map { i, cell in i == row.count - 1 ? cell : padded(cell, to: widths[i]) }
        output += cells.joined(separator: "  ") + "\n"
    }
    writeToStandardOutput(output)
}
