import ArgumentParser
import BelfryConfig
import BelfryListings
import BelfrySchedule
import Foundation

/// `belfry import crontab FILE`: a crontab as a definitions file on standard output.
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Turn other schedulers' files into definitions.", subcommands: [Crontab.self])

    struct Crontab: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "crontab",
            abstract: "Print a crontab as a definitions file, with cron's meaning kept.",
            discussion: """
                One task per job line. Environment lines become env, CRON_TZ= and TZ= the zone of the lines \
                after them, % the job's standard input, and cron's DST behaviour dst: policies. What cannot \
                be imported (@reboot, MAILTO, ...) is reported on standard error with its line.

                Example: belfry import crontab /etc/crontab --system > schedules/system.yaml
                """)

        @Argument(help: "The crontab file (- for standard input): a user's (crontab -l) or, with --system, /etc/crontab or a file of /etc/cron.d.")
        var file: String

        @Flag(help: "Lines have a user field after the schedule (/etc/crontab, /etc/cron.d).")
        var system = false

        @Option(help: "With --system: import only this user's lines (a definitions file runs as one user). Without: whose crontab it is (default: you), for its jobs' HOME and LOGNAME.")
        var user: String?

        @Option(help: "The environment's name. Default: the file's name, in snake_case.")
        var environment: String?

        @Option(help: "The zone of lines before any CRON_TZ= or TZ=. Default: this machine's ($TZ, else /etc/localtime), as cron reads it.")
        var timezone: String?

        func run() throws {
            let data: Data
            if file == "-" {
                data = FileHandle.standardInput.readDataToEndOfFile()
            } else {
                guard let read = FileManager.default.contents(atPath: file) else { throw CommandFailure("\(file): cannot read the file") }
                data = read
            }
            guard let text = String(data: data, encoding: .utf8) else { throw CommandFailure("\(file): not UTF-8 text") }
            guard let zone = timezone ?? CrontabImport.machineZone() else {
                throw CommandFailure("this machine's time zone is not set ($TZ, /etc/localtime): give --timezone ZONE")
            }
            do { _ = try TimeZoneDatabase.system.rules(for: zone) } catch { throw CommandFailure("--timezone: \(error)") }
            let name = environment ?? Self.environmentName(file)
            let result = CrontabImport.convert(text, source: file == "-" ? "standard input" : file, environment: name, zone: zone,
                                               system: system, user: user, owner: system ? nil : user ?? currentUser())
            // What is printed must deploy: check it as `validate` would.
            do {
                _ = try DefinitionLoader.load(files: [("\(name).yaml", Array(result.yaml.utf8))])
            } catch {
                throw CommandFailure(lines: error.diagnostics.map(\.description), summary: "the imported definitions do not validate (a bug: please report it with the crontab)", exitCode: 1)
            }
            writeToStandardOutput(result.yaml)
            let source = file == "-" ? "standard input" : file
            for problem in result.problems {
                writeToStandardError("\(source):\(problem.line): not imported: \(problem.message)\n")
            }
            let count = result.problems.count
            let summary = "belfry: imported \(result.jobs) job\(result.jobs == 1 ? "" : "s") from \(source) (lines before any CRON_TZ read in \(zone))"
                + (count == 0 ? "" : "; \(count) line\(count == 1 ? "" : "s") not imported, above")
            writeToStandardError(summary + "\n")
        }

        /// `cron.d/backup-jobs` → `backup_jobs`.
        static func environmentName(_ file: String) -> String {
            let base = file == "-" ? "crontab" : ((file as NSString).lastPathComponent as NSString).deletingPathExtension
            let name = CrontabImport.snakeCase(base)
            guard let first = name.first, first.isLetter else { return "crontab" }
            return name
        }
    }
}
