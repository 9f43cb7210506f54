import ArgumentParser
import BelfryConfig
import BelfryStore
import Foundation

/// `belfry validate [DIR]`: checks the definition files without touching the database.
struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the definition files; report every problem with file, line and column.")

    @OptionGroup var schedules: SchedulesOptions

    func run() throws {
        let definitions = try schedules.load()
        let tasks = definitions.tasks
        print("\(schedules.path): \(definitions.environments.count) environments, \(tasks.count) tasks, "
              + "\(tasks.reduce(0) { $0 + $1.triggers.count }) triggers: all valid")
    }
}

/// `belfry deploy [DIR]`: validates, then replaces the deployed definitions in one transaction.
struct Deploy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate the definition files and deploy them to the database, all or nothing.")

    @OptionGroup var schedules: SchedulesOptions
    @OptionGroup var database: DatabaseOptions

    @Option(help: "Who deploys (recorded as the owner of changed triggers). Default: $USER.")
    var owner: String?

    @Flag(help: "Print the summary as JSON.")
    var json = false

    @Flag(help: "Show what the deploy would add, change and delete, and change nothing.")
    var dryRun = false

    func run() async throws {
        let store = try await database.open()
        let summary = dryRun
            ? try await store.deployPreview(schedules.load())
            : try await schedules.deploy(to: store, owner: owner ?? currentUser())
        if json {
            try printJSON(summary)
            return
        }
        for key in summary.added { print("+ \(key)") }
        for key in summary.changed { print("~ \(key)") }
        for key in summary.deleted { print("- \(key)") }
        print("\(dryRun ? "would deploy" : "deployed") \(schedules.path) to \(store.location): \(summary.added.count) added, \(summary.changed.count) changed, "
              + "\(summary.deleted.count) deleted, \(summary.unchanged) unchanged; \(summary.active) active, \(summary.inactive) inactive")
    }
}
