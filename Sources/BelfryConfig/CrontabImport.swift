import BelfrySchedule
import Foundation

/// A crontab turned into a definitions file with cron's meaning kept: its environment lines,
/// `CRON_TZ`/`TZ`, `%` (the first unescaped one starts the job's standard input, later ones are
/// newlines), `@` macros, and cron's own DST behaviour as `dst:` policies (Debian's cron(8)).
/// What cannot be imported is reported with its line, never dropped.
public struct CrontabImport: Sendable {
    /// A line not imported, and why.
    public struct Problem: Sendable, Hashable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    /// The definitions file, as YAML text.
    public var yaml: String
    public var jobs: Int
    public var problems: [Problem]

    /// One schedule line as read.
    struct Job {
        var line: Int
        var schedule: String
        var user: String?
        var command: String
        var stdin: String?
        var zone: String
        var env: [(String, String)]
        var shell: String
        var description: String?
    }

    /// Settings only cron's mailer or loader reads: reported, not imported.
    static let cronOnly: Set<String> = ["MAILTO", "MAILFROM", "CONTENT_TYPE", "CONTENT_TRANSFER_ENCODING", "RANDOM_DELAY", "CRON_CORRECT_DST"]

    /// Reads `text`. `system`: lines have a user field (`/etc/crontab`, `/etc/cron.d`);
    /// `user`, with `system`, imports only that user's lines (a definitions file runs as one user).
    /// `zone`: the zone of lines before any `CRON_TZ`/`TZ` (cron reads them in the machine's).
    /// `owner`: whose user crontab it is (a system crontab's lines name theirs). Cron gives every
    /// job `SHELL=/bin/sh`, the owner's `LOGNAME` and `HOME` (from the password database), and
    /// starts it in `HOME`: the import writes the same.
    public static func convert(
        _ text: String, source: String, environment: String, zone: String, system: Bool, user onlyUser: String? = nil,
        owner: String? = nil, zones: TimeZoneDatabase = .system, home: (String) -> String? = homeDirectory
    ) -> CrontabImport {
        var problems: [Problem] = []
        var jobs: [Job] = []
        var env: [(String, String)] = []
        var currentZone = zone
        var shell = "/bin/sh"
        var comment: String?
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let line = raw.hasSuffix("\r") ? String(raw.dropLast()) : String(raw)
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty {
                comment = nil
                continue
            }
            if trimmed.hasPrefix("#") {
                let words = trimmed.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces)
                comment = words.isEmpty ? nil : words
                continue
            }
            defer { comment = nil }
            if let (name, value) = environmentLine(trimmed) {
                switch name {
                case "CRON_TZ", "TZ":
                    let zoneName = value.hasPrefix(":") ? String(value.dropFirst()) : value
                    if (try? zones.rules(for: zoneName)) == nil {
                        problems.append(Problem(line: number, message: "\(name)=\(value): unknown time zone; the lines after it keep \(currentZone)"))
                    } else {
                        currentZone = zoneName
                    }
                    if name == "TZ" { set(&env, name, value) }  // cron passes TZ on to jobs too
                case "SHELL":
                    shell = value
                    set(&env, name, value)
                case _ where cronOnly.contains(name):
                    problems.append(Problem(line: number, message: "\(name) is a setting of cron itself (mail, loading), not imported: Belfry keeps each attempt's output in its history (belfry logs)"))
                default:
                    set(&env, name, value)
                }
                continue
            }
            let fields = splitFields(trimmed, count: trimmed.hasPrefix("@") ? 1 : 5)
            var schedule: String
            var rest: Substring
            if trimmed.hasPrefix("@") {
                let macro = fields.fields[0].lowercased()
                if macro == "@reboot" {
                    problems.append(Problem(line: number, message: "@reboot is not imported: a scheduler fires at instants, not at boot (a systemd unit with WantedBy=multi-user.target does that)"))
                    continue
                }
                guard CronExpression.macros[macro] != nil else {
                    problems.append(Problem(line: number, message: "unknown macro \"\(fields.fields[0])\""))
                    continue
                }
                schedule = macro
                rest = fields.rest
            } else {
                guard fields.fields.count == 5 else {
                    problems.append(Problem(line: number, message: "not a job line (five schedule fields and a command), an environment setting or a comment"))
                    continue
                }
                schedule = fields.fields.joined(separator: " ")
                rest = fields.rest
            }
            var user: String?
            if system {
                let userField = splitFields(String(rest), count: 1)
                guard let name = userField.fields.first, !userField.rest.isEmpty else {
                    problems.append(Problem(line: number, message: "no user field and command (a system crontab line is: schedule, user, command)"))
                    continue
                }
                user = name
                rest = userField.rest
                if let onlyUser, name != onlyUser {
                    problems.append(Problem(line: number, message: "runs as \(name): not imported with --user \(onlyUser) (import it with --user \(name))"))
                    continue
                }
            }
            guard !rest.isEmpty else {
                problems.append(Problem(line: number, message: "the job has no command"))
                continue
            }
            do {
                _ = try CronExpression(parsing: schedule)
            } catch {
                problems.append(Problem(line: number, message: "cron: \(error.description)"))
                continue
            }
            let (command, stdin) = splitPercent(String(rest))
            var jobEnv = env
            if !jobEnv.contains(where: { $0.0 == "SHELL" }) { jobEnv.insert(("SHELL", "/bin/sh"), at: 0) }
            if let account = user ?? owner {
                if !jobEnv.contains(where: { $0.0 == "HOME" }), let directory = home(account) { set(&jobEnv, "HOME", directory) }
                set(&jobEnv, "LOGNAME", account)  // cron's own: a crontab cannot change it
            }
            jobs.append(Job(line: number, schedule: schedule, user: user, command: command, stdin: stdin, zone: currentZone,
                            env: jobEnv, shell: shell, description: comment))
        }
        let users = Set(jobs.compactMap(\.user))
        if users.count > 1 {
            let lines = jobs.map(\.line)
            problems.append(Problem(line: lines[0], message: "the jobs run as \(users.sorted().joined(separator: ", ")): a definitions file runs as one user; import each with --user NAME"))
            jobs = []
        }
        return CrontabImport(yaml: render(jobs, source: source, environment: environment, user: users.first), jobs: jobs.count,
                             problems: problems.sorted { $0.line < $1.line })
    }

    /// `NAME = value`, with the value unquoted as cron does; nil for a job line.
    static func environmentLine(_ line: String) -> (String, String)? {
        guard let equals = line.firstIndex(of: "=") else { return nil }
        let name = line[..<equals].trimmingCharacters(in: .whitespaces)
        guard let first = name.first, first.isLetter || first == "_",
            name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") })
        else { return nil }
        var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
        if value.count >= 2, let quote = value.first, quote == "\"" || quote == "'", value.last == quote {
            value = String(value.dropFirst().dropLast())
        }
        return (name, value)
    }

    /// The first `count` whitespace-separated fields, and the rest after the whitespace that follows them.
    static func splitFields(_ line: String, count: Int) -> (fields: [String], rest: Substring) {
        var fields: [String] = []
        var rest = Substring(line)
        while fields.count < count {
            rest = rest.drop { $0 == " " || $0 == "\t" }
            guard !rest.isEmpty else { break }
            let field = rest.prefix { $0 != " " && $0 != "\t" }
            fields.append(String(field))
            rest = rest.dropFirst(field.count)
        }
        return (fields, rest.drop { $0 == " " || $0 == "\t" })
    }

    /// Cron's `%`: the command up to the first unescaped `%`, and the standard input after it
    /// with later `%` as newlines; `\%` is a `%` in both.
    static func splitPercent(_ text: String) -> (command: String, stdin: String?) {
        var command = ""
        var stdin: String?
        var chars = text.makeIterator()
        while let c = chars.next() {
            if c == "\\" {
                guard let next = chars.next() else {
                    command.append(c)
                    break
                }
                if next == "%" {
                    if stdin == nil { command.append("%") } else { stdin!.append("%") }
                } else if stdin == nil {
                    command.append(c)
                    command.append(next)
                } else {
                    stdin!.append(c)
                    stdin!.append(next)
                }
            } else if c == "%" {
                if stdin == nil { stdin = "" } else { stdin!.append("\n") }
            } else if stdin == nil {
                command.append(c)
            } else {
                stdin!.append(c)
            }
        }
        // Cron ends a job's input with a newline when the last `%` did not.
        if let text = stdin, !text.isEmpty, !text.hasSuffix("\n") { stdin = text + "\n" }
        return (command, stdin)
    }

    /// The home directory of `user` in the password database.
    public static func homeDirectory(_ user: String) -> String? {
        guard let entry = getpwnam(user), let directory = entry.pointee.pw_dir else { return nil }
        return String(cString: directory)
    }

    /// A task name from the command: its program's base name in snake_case.
    static func taskName(_ command: String) -> String {
        let words = command.split(whereSeparator: { $0 == " " || $0 == "\t" })
        // Skip leading variable assignments and common wrappers to find the program.
        let program = words.first { word in !word.contains("=") && !["nice", "ionice", "sudo", "exec", "timeout", "flock"].contains(word) }
            ?? words.first ?? "job"
        var base = String(program.split(separator: "/").last ?? Substring(program))
        if let dot = base.lastIndex(of: "."), dot != base.startIndex { base = String(base[..<dot]) }
        var name = snakeCase(base)
        if name.isEmpty || !name.first!.isLetter { name = "job" + (name.isEmpty ? "" : "_" + name) }
        return String(name.prefix(40))
    }

    /// `Backup-Jobs.v2` → `backup_jobs_v2`: lowercase letters and digits, runs of anything else one `_`.
    public static func snakeCase(_ text: String) -> String {
        var name = ""
        for c in text.lowercased() {
            if c.isASCII && (c.isLetter || c.isNumber) {
                name.append(c)
            } else if !name.hasSuffix("_"), !name.isEmpty {
                name.append("_")
            }
        }
        while name.hasSuffix("_") { name.removeLast() }
        return name
    }

    /// A YAML double-quoted scalar (JSON's string syntax is a subset of it).
    static func quote(_ text: String) -> String {
        let data = (try? JSONEncoder().encode(text)) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\\/", with: "/")
    }

    /// Whether cron treats the job as a wildcard one for DST: `*` in its minute or hour, or `@hourly`.
    static func isWildcard(_ schedule: String) -> Bool {
        if schedule.hasPrefix("@") { return ["@hourly", "@minutely"].contains(schedule) }
        let fields = schedule.split(separator: " ")
        return fields[0].contains("*") || fields[1].contains("*")
    }

    static func render(_ jobs: [Job], source: String, environment: String, user: String?) -> String {
        var out = "# Imported from \(source) by `belfry import crontab`: one task per job line.\n"
        out += "environment:\n  name: \(environment)\n"
        if let user { out += "  user: \(quote(user))\n" }
        // Cron starts each job in its HOME.
        let homes = Set(jobs.compactMap { job in job.env.last { $0.0 == "HOME" }?.1 })
        if homes.count == 1, let home = homes.first { out += "  working_directory: \(quote(home))\n" }
        // Cron gives every job PATH=/usr/bin:/bin unless the crontab sets PATH.
        let sharedEnv = jobs.first.map { first in jobs.allSatisfy { $0.env.elementsEqual(first.env) { $0 == $1 } } } ?? true
        func envBlock(_ env: [(String, String)], indent: String) -> String {
            var all = env
            if !all.contains(where: { $0.0 == "PATH" }) { all.insert(("PATH", "/usr/bin:/bin"), at: 0) }
            return "\(indent)env:\n" + all.map { "\(indent)  \($0.0): \(quote($0.1))\n" }.joined()
        }
        if sharedEnv { out += envBlock(jobs.first?.env ?? [], indent: "  ") }
        out += jobs.isEmpty ? "tasks: []\n" : "tasks:\n"
        var names: [String: Int] = [:]
        for job in jobs {
            var name = taskName(job.command)
            names[name, default: 0] += 1
            if names[name]! > 1 { name += "_\(names[name]!)" }
            out += "  - name: \(name)\n"
            out += "    description: \(quote(job.description ?? "line \(job.line) of \(source)"))\n"
            var script = job.command
            if homes.count > 1 { script = "cd \"$HOME\" || exit 1\n" + script }  // HOME changes between its jobs
            if let stdin = job.stdin {
                script = "printf '%s' '\(stdin.replacingOccurrences(of: "'", with: "'\\''"))' | {\n\(job.command)\n}"
            }
            if job.shell == "/bin/sh" {
                out += "    command: { shell: \(quote(script)) }\n"
            } else {
                out += "    command: [\(quote(job.shell)), \"-c\", \(quote(script))]\n"
            }
            if !sharedEnv { out += envBlock(job.env, indent: "    ") }
            out += "    triggers:\n"
            out += "      - name: cron\n"
            out += "        cron: \(quote(job.schedule))\n"
            out += "        timezone: \(job.zone)\n"
            if isWildcard(job.schedule) {
                out += "        # cron follows the new wall clock for a job with * in its minute or hour: skipped times do not run, repeated ones run again\n"
                out += "        dst: { skipped: skip, repeated: twice }\n"
            } else {
                out += "        # cron runs a fixed-time job that a DST jump skips soon after the change, and not again in a repeated hour\n"
                out += "        dst: { skipped: shift, repeated: once }\n"
            }
        }
        return out
    }

    static func set(_ env: inout [(String, String)], _ name: String, _ value: String) {
        if let index = env.firstIndex(where: { $0.0 == name }) { env[index].1 = value } else { env.append((name, value)) }
    }

    /// This machine's zone as cron reads it: `$TZ`, else `/etc/localtime`'s target, else
    /// `/etc/timezone`; nil when none names a zone.
    public static func machineZone(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let tz = environment["TZ"], !tz.isEmpty { return tz.hasPrefix(":") ? String(tz.dropFirst()) : tz }
        if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/etc/localtime"),
            let range = target.range(of: "zoneinfo/")
        {
            return String(target[range.upperBound...])
        }
        if let text = try? String(contentsOfFile: "/etc/timezone", encoding: .utf8) {
            let name = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if !name.isEmpty { return name }
        }
        return nil
    }
}
