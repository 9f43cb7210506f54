import ArgumentParser
import BelfryConfig
import BelfryStore
import Foundation

/// `belfry validate [DIR]`: checks the definition files without touching the database.
struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check the definition files; report every problem with file, line and column.")

    @OptionGroup var schedules: SchedulesOptions

    @Flag(help: "Print the result as JSON: counts, errors, warnings and DST notes, each with file, line and column.")
    var json = false

    func run() throws {
        guard json else {
            let definitions = try schedules.load()
            let tasks = definitions.tasks
            printLine("\(schedules.path): \(definitions.environments.count) environments, \(tasks.count) tasks, "
                  + "\(tasks.reduce(0) { $0 + $1.triggers.count }) triggers: all valid")
            return
        }
        let definitions: Definitions
        do {
            definitions = try DefinitionLoader.load(directory: schedules.path)
        } catch {
            try printJSON(ValidationReport(directory: schedules.path, valid: false, diagnostics: error.diagnostics.map(ValidationReport.Item.init)))
            throw ExitCode(1)
        }
        let tasks = definitions.tasks
        try printJSON(ValidationReport(
            directory: schedules.path, valid: true, environments: definitions.environments.count, tasks: tasks.count,
            triggers: tasks.reduce(0) { $0 + $1.triggers.count }, diagnostics: definitions.notices.map(ValidationReport.Item.init)))
    }
}

/// `validate --json`.
struct ValidationReport: Encodable {
    struct Item: Encodable {
        var file: String
        var line: Int
        var column: Int
        var severity: String
        var message: String
        var hint: String?

        init(_ diagnostic: Diagnostic) {
            (file, line, column, message, hint) = (diagnostic.file, diagnostic.line, diagnostic.column, diagnostic.message, diagnostic.hint)
            severity = diagnostic.severity.rawValue
        }
    }

    var directory: String
    var valid: Bool
    var environments: Int?
    var tasks: Int?
    var triggers: Int?
    /// Errors (when not valid), warnings and notes.
    var diagnostics: [Item]
}

/// `belfry deploy [DIR]`: validates, then replaces the deployed definitions in one transaction.
struct Deploy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
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
        for key in summary.added { printLine("+ \(key)") }
        for key in summary.changed { printLine("~ \(key)") }
        for key in summary.deleted { printLine("- \(key)") }
        printLine("\(dryRun ? "would deploy" : "deployed") \(schedules.path) to \(store.location): \(summary.added.count) added, \(summary.changed.count) changed, "
              + "\(summary.deleted.count) deleted, \(summary.unchanged) unchanged; \(summary.active) active, \(summary.inactive) inactive")
    }
}
