@testable import BelfryConfig
import BelfryTesting
import Foundation
import Testing

/// `belfry import crontab`: what cron would run, run by Belfry.
@Suite("belfry import crontab")
struct ImportCrontabTests {
    static let crontab = """
        # m h dom mon dow command
        MAILTO=ops@example.com
        GREETING = "hello  world"
        @reboot /usr/local/bin/warm-cache

        # Says hello with the crontab's variable
        */15\t*  * * 1-5   echo "$GREETING" from $PATH
        0 9 * * MON\tcat -n; echo "100\\% done"%first line%second line
        CRON_TZ=Europe/Berlin
        30 2 * * *  printf '\\%s\\n' "$GREETING"
        @daily /bin/true
        0 0 30 2 * echo never

        """

    @Test("env lines, CRON_TZ, tabs, % as stdin and newlines, \\% kept, @ macros; @reboot, MAILTO and a never-firing line reported by line")
    func convert() throws {
        let result = CrontabImport.convert(Self.crontab, source: "crontab", environment: "mine", zone: "America/New_York", system: false)
        #expect(result.jobs == 4)
        #expect(result.problems.map(\.line) == [2, 4, 12])
        let definitions = try DefinitionLoader.load(files: [("mine.yaml", Array(result.yaml.utf8))])
        let tasks = definitions.tasks
        #expect(tasks.map(\.name) == ["echo", "cat", "printf", "true"])
        #expect(tasks[0].description == "Says hello with the crontab's variable")
        #expect(tasks.map { $0.triggers[0].schedule.timezone } == ["America/New_York", "America/New_York", "Europe/Berlin", "Europe/Berlin"])
        #expect(tasks[0].triggers[0].schedule == .cron(expression: "*/15 * * * 1-5", timezone: "America/New_York", skipped: .skip, repeated: .twice))
        #expect(tasks[2].triggers[0].schedule == .cron(expression: "30 2 * * *", timezone: "Europe/Berlin", skipped: .shift, repeated: .once))
        #expect(tasks[3].triggers[0].schedule.text == "@daily")
        #expect(tasks[0].env["GREETING"] == "hello  world" && tasks[0].env["PATH"] == "/usr/bin:/bin")
        #expect(CrontabImport.splitPercent("a\\%b%c%d\\%e%") == ("a%b", "c\nd%e\n"))
        #expect(CrontabImport.splitPercent("no input") == ("no input", nil))
        // Debian's cron ends the input with a newline when the last % did not (seen under cron itself).
        #expect(CrontabImport.splitPercent("cat%in%put") == ("cat", "in\nput\n"))
        // The owner's LOGNAME and HOME, SHELL=/bin/sh, and HOME as the working directory, as cron gives them.
        let owned = CrontabImport.convert("* * * * * pwd\n", source: "c", environment: "e", zone: "UTC", system: false, owner: "alice",
                                          home: { $0 == "alice" ? "/home/alice" : nil })
        #expect(owned.yaml.contains("  working_directory: \"/home/alice\"\n"))
        #expect(owned.yaml.contains("    SHELL: \"/bin/sh\"\n") && owned.yaml.contains("    LOGNAME: \"alice\"\n") && owned.yaml.contains("    HOME: \"/home/alice\"\n"))
    }

    @Test("a system crontab: the user field becomes the environment's user; several users are imported one at a time")
    func system() throws {
        let text = "SHELL=/bin/bash\n17 * * * * root cd / && run-parts --report /etc/cron.hourly\n25 6 * * * backup /opt/backup/run\n"
        let mixed = CrontabImport.convert(text, source: "/etc/crontab", environment: "system", zone: "UTC", system: true)
        #expect(mixed.jobs == 0 && mixed.problems.last?.message.contains("import each with --user NAME") == true)
        let root = CrontabImport.convert(text, source: "/etc/crontab", environment: "system", zone: "UTC", system: true, user: "root")
        #expect(root.jobs == 1 && root.problems.map(\.line) == [3])
        let definitions = try DefinitionLoader.load(files: [("system.yaml", Array(root.yaml.utf8))])
        #expect(definitions.environments[0].tasks[0].command == .arguments(["/bin/bash", "-c", "cd / && run-parts --report /etc/cron.hourly"]))
        #expect(root.yaml.contains("  user: \"root\"\n"))
    }

    @Test("import, deploy, run: the output and environment are what cron's sh -c gives")
    func roundTrip() throws {
        let directory = try TemporaryDirectory()
        try directory.write("crontab", Self.crontab)
        let imported = try BelfryCommand.run("import", "crontab", directory.path + "/crontab", "--environment", "mine", "--timezone", "America/New_York")
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stderr.contains("crontab:2: not imported: MAILTO") && imported.stderr.contains("crontab:4: not imported: @reboot"))
        #expect(imported.stderr.contains("crontab:12: not imported: cron: \"0 0 30 2 *\" never fires"))
        try directory.write("schedules/mine.yaml", imported.stdout)
        let database = directory.path + "/belfry.sqlite"
        let deploy = try BelfryCommand.run("deploy", directory.path + "/schedules", "--database", database)
        #expect(deploy.status == 0, "\(deploy.stderr)")
        #expect(deploy.stderr.contains("note: \"30 2 * * *\" in Europe/Berlin runs at 03:00 instead of 02:30"), "\(deploy.stderr)")
        let echo = try BelfryCommand.run("run", "mine.echo", "--database", database)
        #expect(echo.stdout == "hello  world from /usr/bin:/bin\n")
        let cat = try BelfryCommand.run("run", "mine.cat", "--database", database)
        // No `%` after the last line: cron ends the input with a newline all the same, and so does Belfry.
        #expect(cat.stdout == "     1\tfirst line\n     2\tsecond line\n100% done\n")
        let printf = try BelfryCommand.run("run", "mine.printf", "--database", database)
        #expect(printf.stdout == "hello  world\n")
    }
}
