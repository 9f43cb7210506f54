import BelfrySchedule
import Foundation
import Yams

/// Reads one definition file: one environment, its tasks and their triggers, plus any queues it
/// declares. Problems are collected in `file.diagnostics`.
struct EnvironmentReader {
    var file: YAMLFile
    let zones: TimeZoneDatabase
    /// Queues declared under `queues:` in this file.
    var queues: [String: (concurrency: Int, node: Node)] = [:]
    /// Queues named by tasks and triggers, to be checked once every file is read.
    var queueReferences: [(queue: String, node: Node)] = []
    /// Where the environment's name is written (for "defined twice" errors).
    var environmentNameNode: Node?
    /// Cron expressions already checked in this file, by expression, zone and DST policy: large
    /// files repeat a few expressions many times.
    var checkedCron: [String: Result<CronSchedule, CronError>] = [:]
    /// What DST notes are computed from: the next change after it.
    let now: Instant

    init(path: String, zones: TimeZoneDatabase, now: Instant = .now) {
        self.file = YAMLFile(path: path)
        self.zones = zones
        self.now = now
    }

    /// Per-environment defaults that tasks inherit.
    struct Defaults {
        var environment: String
        var env: [String: String]
        var queue: String?
        var workingDirectory: String?
        var user: String?
    }

    /// Bump when the meaning of a file or the shape of the definitions changes, so that a
    /// redeploy does not take an old deployment of the same bytes for the same definitions.
    static let definitionFormat: UInt64 = 1

    /// FNV-1a over the file's bytes, seeded with the definition format.
    static func fingerprint(_ bytes: [UInt8]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ definitionFormat
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return String(hash, radix: 16)
    }

    mutating func read(_ bytes: [UInt8]) -> EnvironmentDefinition? {
        guard let text = decode(bytes), let root = compose(text) else { return nil }
        guard let top = file.mapping(root, "the file", allowed: DefinitionKeys.file) else { return nil }
        if let queuesNode = top["queues"] { readQueues(queuesNode) }

        let stem = ((file.path as NSString).lastPathComponent as NSString).deletingPathExtension
        var defaults = Defaults(environment: stem, env: [:])
        var description: String?
        if let environmentNode = top["environment"], let environment = file.mapping(environmentNode, "environment", allowed: DefinitionKeys.environment) {
            if let nameNode = environment["name"] {
                environmentNameNode = nameNode
                defaults.environment = file.name(nameNode, "environment name") ?? stem
            } else if !YAMLFile.isName(stem) {
                file.error(environmentNode, "environment has no name and the file name \"\(stem)\" is not a valid one",
                           hint: "add name: under environment:, in snake_case or kebab-case")
            }
            description = file.string(environment["description"], "environment description", maxLength: 255)
            if let env = environment["env"] { defaults.env = file.stringMap(env, "environment env") }
            if let queue = environment["queue"] { defaults.queue = file.name(queue, "environment queue") }
            if let directory = environment["working_directory"] { defaults.workingDirectory = file.string(directory, "working_directory") }
            if let user = environment["user"] { defaults.user = file.string(user, "user") }
        } else if top["environment"] == nil {
            environmentNameNode = root
            if !YAMLFile.isName(stem) {
                file.error(root, "the file name \"\(stem)\" is not a valid environment name",
                           hint: "add environment: with a name:, or rename the file in snake_case or kebab-case")
            }
        }
        guard let tasksNode = top["tasks"] else {
            file.error(root, "the file has no tasks:", hint: "add tasks: with a list of tasks")
            return nil
        }
        var tasks: [TaskDefinition] = []
        var taskNames = Set<String>()
        for taskNode in file.sequence(tasksNode, "tasks") ?? [] {
            let task = readTask(taskNode, defaults: defaults)
            if let name = task?.name ?? YAMLFile.givenName(taskNode), !taskNames.insert(name).inserted {
                file.error(taskNode, "task \"\(name)\" is defined twice in environment \"\(defaults.environment)\"")
                continue
            }
            if let task { tasks.append(task) }
        }
        return EnvironmentDefinition(
            name: defaults.environment, description: description, queue: defaults.queue, file: file.path,
            sourceHash: Self.fingerprint(bytes), tasks: tasks)
    }

    /// The file as UTF-8 text; otherwise an error on the first line that is not.
    private mutating func decode(_ bytes: [UInt8]) -> String? {
        if let text = String(validating: bytes, as: UTF8.self) {
            if !Self.hasContent(bytes) {
                file.diagnostics.append(Diagnostic(file: file.path, line: 1, column: 1, message: "the file is empty",
                                                   hint: "a definition file holds environment: and tasks:"))
                return nil
            }
            return text
        }
        var line = 1
        for slice in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            if String(validating: slice, as: UTF8.self) == nil { break }
            line += 1
        }
        file.diagnostics.append(Diagnostic(file: file.path, line: line, column: 1, message: "the file is not UTF-8 text",
                                           hint: "save it as UTF-8"))
        return nil
    }

    /// Whether any line holds something other than blanks and a comment.
    private static func hasContent(_ bytes: [UInt8]) -> Bool {
        var lineStart = true  // only blanks so far on this line
        var comment = false
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                (lineStart, comment) = (true, false)
            } else if comment || byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") {
                continue
            } else if lineStart && byte == UInt8(ascii: "#") {
                comment = true
            } else {
                return true
            }
        }
        return false
    }

    /// The YAML tree, or the parser's error at its position. A key repeated in a block mapping is
    /// reported at its second occurrence, which is then left out (its lines made blank, so that
    /// every position stays) for the rest of the file to be read and its other problems reported.
    private mutating func compose(_ text: String) -> Node? {
        var text = text
        while true {
            do {
                // The encoding and the constructor given, not Yams' defaults: `Parser.Encoding.default`
                // reads the whole process environment into a dictionary at every call, and
                // `Constructor.default` builds its tables of every YAML tag (a tenth of `belfry
                // validate`). Nodes are read by `YAMLFile`, never constructed through Yams' tables.
                guard let root = try Yams.compose(yaml: text, .basic, Constructor([:], [:], [:]), .utf8) else {
                    file.diagnostics.append(Diagnostic(file: file.path, line: 1, column: 1, message: "the file is empty"))
                    return nil
                }
                return root
            } catch let error as YamlError {
                if case .duplicatedKeysInMapping(let duplicates, let context) = error, let key = duplicates.first {
                    // Yams points at the first occurrence; the mistake is the second one.
                    let first = (line: context.mark.line, column: context.mark.column)
                    let second = Self.repeated(key, after: first, in: text)
                    let (line, column) = second ?? first
                    file.diagnostics.append(Diagnostic(
                        file: file.path, line: line, column: column,
                        message: "duplicate key \"\(key)\" in a mapping" + (second == nil ? "" : " (first at \(first.line):\(first.column))")))
                    guard let second, let rest = Self.blankingEntry(at: second, in: text) else { return nil }
                    text = rest
                    continue
                }
                var line = 0
                var column = 0
                var message = "\(error)"
                switch error {
                case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
                     .composer(let context, let problem, let mark, _):
                    (line, column) = (mark.line, mark.column)
                    message = "invalid YAML: " + problem + (context.map { " (\($0.text))" } ?? "")
                default:
                    break
                }
                let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
                let hint = line > 0 && line <= lines.count && lines[line - 1].contains("\t")
                    ? "YAML indentation must use spaces, not tabs" : nil
                file.diagnostics.append(Diagnostic(file: file.path, line: line, column: column, message: message, hint: hint))
                return nil
            } catch {
                file.diagnostics.append(Diagnostic(file: file.path, line: 0, column: 0, message: "invalid YAML: \(error)"))
                return nil
            }
        }
    }

    /// `text` with the block-mapping entry whose key is at `at` (1-based line and column) made
    /// blank: the key's line and the lines under it that are indented further (its value), blank
    /// or comments. Nil when the key does not begin its line (a flow mapping, a sequence's item).
    static func blankingEntry(at: (line: Int, column: Int), in text: String) -> String? {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let indent = at.column - 1
        func start(_ line: Substring) -> Int? { line.utf8.firstIndex { $0 != UInt8(ascii: " ") }.map { line.utf8.distance(from: line.utf8.startIndex, to: $0) } }
        guard at.line >= 1, at.line <= lines.count, start(lines[at.line - 1]) == indent else { return nil }
        lines[at.line - 1] = ""
        for number in at.line..<lines.count {
            let line = lines[number]
            if let first = start(line), first <= indent, !line.dropFirst(first).hasPrefix("#"), line.dropFirst(first) != "\r" { break }
            lines[number] = ""
        }
        return lines.joined(separator: "\n")
    }

    /// Where `key`, first at `first` (1-based line and column), appears again in the same mapping:
    /// later on the same line (a flow mapping), or on a later line at the same column before the
    /// mapping's indentation ends (a block mapping).
    static func repeated(_ key: String, after first: (line: Int, column: Int), in text: String) -> (line: Int, column: Int)? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { Array($0.utf8) }
        let spellings = [key, "\"\(key)\"", "'\(key)'"].map { Array($0.utf8) }
        func isKey(_ line: [UInt8], at index: Int) -> Bool {
            for spelling in spellings where line.count >= index + spelling.count && Array(line[index..<index + spelling.count]) == spelling {
                var rest = index + spelling.count
                while rest < line.count, line[rest] == UInt8(ascii: " ") { rest += 1 }
                if rest < line.count, line[rest] == UInt8(ascii: ":") { return true }
            }
            return false
        }
        guard first.line >= 1, first.line <= lines.count else { return nil }
        let firstLine = lines[first.line - 1]
        let indent = first.column - 1
        if firstLine.count > indent + 1 {
            for index in (indent + 1)..<firstLine.count where isKey(firstLine, at: index)
                && (firstLine[index - 1] == UInt8(ascii: " ") || firstLine[index - 1] == UInt8(ascii: ",") || firstLine[index - 1] == UInt8(ascii: "{")) {
                return (first.line, index + 1)
            }
        }
        for number in first.line..<lines.count {
            let line = lines[number]
            guard let start = line.firstIndex(where: { $0 != UInt8(ascii: " ") }), line[start] != UInt8(ascii: "#") else { continue }
            if start < indent { return nil }  // the mapping has ended
            // A block mapping's key at the column; in a sequence's item, after "- " at the indentation above it.
            if start == indent, isKey(line, at: indent) { return (number + 1, indent + 1) }
            if start < indent, line[start] == UInt8(ascii: "-"), isKey(line, at: indent) { return (number + 1, indent + 1) }
        }
        return nil
    }

    private mutating func readQueues(_ node: Node) {
        for (name, keyNode, value) in file.entries(node, "queues") ?? [] {
            guard YAMLFile.isName(name) else {
                file.error(keyNode, "queue name \"\(name)\" is not a valid name", hint: "use snake_case or kebab-case")
                continue
            }
            guard let settings = file.mapping(value, "queue \(name)", allowed: DefinitionKeys.queue) else { continue }
            let concurrency = settings["concurrency"].flatMap { file.int($0, "concurrency", in: 1...10_000) } ?? 16
            queues[name] = (concurrency, keyNode)
        }
    }
}
