import BelfryConfig
import BelfryTesting
import Foundation
import Testing

/// The manual cannot drift from the code: its definition files validate, its `belfry next`
/// examples print what it shows, its broken example fails as it says, and every key the loader
/// accepts, every command, every option and every `--json` field is in it.
@Suite("The manual")
struct DocsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// README.md and every page of docs/, by name.
    static func pages() throws -> [(name: String, text: String)] {
        let docs = root.appendingPathComponent("docs")
        let names = try FileManager.default.contentsOfDirectory(atPath: docs.path).filter { $0.hasSuffix(".md") }.sorted()
        return try [("README.md", String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8))]
            + names.map { ("docs/" + $0, try String(contentsOf: docs.appendingPathComponent($0), encoding: .utf8)) }
    }

    static func page(_ name: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(name), encoding: .utf8)
    }

    /// The fenced blocks of a page: the fence's info string, the block's text, its first line.
    static func blocks(_ text: String) -> [(info: String, body: String, line: Int)] {
        var result: [(String, String, Int)] = []
        var open: (info: String, lines: [String], line: Int)?
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.hasPrefix("```") {
                if let block = open {
                    result.append((block.info, block.lines.joined(separator: "\n") + "\n", block.line))
                    open = nil
                } else {
                    open = (String(line.dropFirst(3)).trimmingCharacters(in: .whitespaces), [], number + 2)
                }
            } else {
                open?.lines.append(String(line))
            }
        }
        return result
    }

    @Test("every key the loader accepts is in the reference, in its mapping's section")
    func everyKey() throws {
        let text = try Self.page("docs/definitions.md")
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for (mapping, keys) in DefinitionKeys.all {
            let heading = mapping == "file" ? "## Layout" : (["environment", "queues", "task", "trigger"].contains(mapping) ? "## " : "### ") + mapping
            let start = try #require(lines.firstIndex(of: heading), "docs/definitions.md has no section \"\(heading)\"")
            let end = lines[(start + 1)...].firstIndex { $0.hasPrefix("## ") || ($0.hasPrefix("### ") && heading.hasPrefix("### ")) } ?? lines.count
            let section = lines[start..<end]
            for key in keys {
                #expect(section.contains { $0.hasPrefix("| `\(key)` |") }, "docs/definitions.md, section \(heading): no row for the key `\(key)`")
            }
        }
    }

    @Test("every definition file shown in the manual validates")
    func examplesValidate() throws {
        var count = 0
        for (name, text) in try Self.pages() {
            for block in Self.blocks(text) where block.info == "yaml" {
                // `# NAME.yaml` on the first line names the file (the environment's default name).
                let first = block.body.prefix { $0 != "\n" }
                let file = first.hasPrefix("# ") && first.hasSuffix(".yaml") ? String(first.dropFirst(2)) : "example.yaml"
                do {
                    _ = try DefinitionLoader.load(files: [(file, Array(block.body.utf8))])
                } catch {
                    Issue.record("\(name):\(block.line): the example does not validate: \(error.diagnostics.map(\.description))")
                }
                count += 1
            }
        }
        #expect(count >= 5)
    }

    @Test("the Prometheus configuration and rules shown pass promtool, when installed")
    func prometheusExamples() async throws {
        let promtool = "/usr/bin/promtool"
        guard FileManager.default.isExecutableFile(atPath: promtool) else {
            print("skipped: the manual's Prometheus examples (promtool is not installed; .ci/run installs Debian's prometheus)")
            return
        }
        let directory = try TemporaryDirectory()
        var count = 0
        for (name, text) in try Self.pages() {
            for block in Self.blocks(text) where block.info == "yaml prometheus" {
                let file = directory.path + "/\(count).yml"
                try Data(block.body.utf8).write(to: URL(fileURLWithPath: file))
                let kind = block.body.hasPrefix("groups:") ? "rules" : "config"
                let check = try await offThePool { try Self.run(promtool, ["check", kind, file]) }
                #expect(check.status == 0, "\(name):\(block.line): promtool check \(kind): \(check.output)")
                count += 1
            }
        }
        #expect(count >= 2)
    }

    static func run(_ program: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let output = Pipe()
        (process.standardOutput, process.standardError) = (output, output)
        try process.run()
        let said = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: said, as: UTF8.self))
    }

    @Test("the broken example fails with exactly the errors the manual shows")
    func brokenExample() throws {
        let text = try Self.page("docs/definitions.md")
        let blocks = Self.blocks(text)
        let index = try #require(blocks.firstIndex { $0.info == "yaml broken" })
        let expected = try #require(blocks.dropFirst(index + 1).first { $0.info == "text" }).body
        let directory = try TemporaryDirectory()
        try directory.write("schedules/reports.yaml", blocks[index].body)
        let result = try BelfryCommand.run(["validate", directory.path + "/schedules"])
        #expect(result.status == 1)
        #expect(result.stderr.replacingOccurrences(of: directory.path + "/", with: "") == expected)
    }

    @Test("every `belfry next` example prints what the manual shows")
    func nextExamples() throws {
        var count = 0
        for (name, text) in try Self.pages() {
            for block in Self.blocks(text) where block.info == "console" {
                var lines = block.body.split(separator: "\n").map(String.init)[...]
                while let command = lines.popFirst() {
                    guard command.hasPrefix("$ belfry ") else { continue }
                    let output = lines.prefix { !$0.hasPrefix("$ ") }
                    lines = lines.dropFirst(output.count)
                    let arguments = try Self.shellWords(String(command.dropFirst("$ belfry ".count)))
                    let result = try BelfryCommand.run(arguments)
                    let expected = output.map { $0 + "\n" }.joined()
                    if expected.hasPrefix("belfry: ") {
                        #expect(result.status != 0 && result.stderr == expected && result.stdout.isEmpty, "\(name):\(block.line): \(command)")
                    } else {
                        #expect(result.status == 0 && result.stdout == expected, "\(name):\(block.line): \(command)\n\(result.stdout)\(result.stderr)")
                    }
                    count += 1
                }
            }
        }
        #expect(count >= 10)
    }

    @Test("every command and option is in the manual")
    func everyCommand() throws {
        let manual = try Self.pages().map(\.text).joined(separator: "\n")
        let dump = try BelfryCommand.run(["--experimental-dump-help"])
        let tree = try #require(try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any])
        func walk(_ command: [String: Any], _ path: [String]) {
            if command["shouldDisplay"] as? Bool == false { return }
            let name = path.joined(separator: " ")
            if path.count > 1 {
                #expect(manual.contains(name), "no page mentions `\(name)`")
            }
            for argument in command["arguments"] as? [[String: Any]] ?? [] {
                if argument["shouldDisplay"] as? Bool == false { continue }
                for option in argument["names"] as? [[String: Any]] ?? [] where option["kind"] as? String == "long" {
                    guard let long = option["name"] as? String, long != "help" else { continue }
                    #expect(manual.contains("--\(long)"), "no page mentions `\(name) --\(long)`")
                }
            }
            for sub in command["subcommands"] as? [[String: Any]] ?? [] {
                guard let subName = sub["commandName"] as? String, subName != "help" else { continue }
                walk(sub, path + [subName])
            }
        }
        walk(try #require(tree["command"] as? [String: Any]), ["belfry"])
    }

    @Test("every field of every --json listing is in the runs page")
    func jsonFields() throws {
        let text = try Self.page("docs/runs.md")
        let directory = try TemporaryDirectory()
        try directory.write("schedules/t.yaml", """
            tasks:
              - name: job
                command: ["/bin/echo", "hi"]
                triggers: [{ name: hourly, cron: "0 * * * *" }]
            """)
        let database = ["--database", directory.path + "/belfry.sqlite"]
        var outputs: [(String, String)] = []
        func json(_ arguments: [String]) throws {
            let result = try BelfryCommand.run(arguments + ["--json"])
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
            outputs.append((arguments.prefix(3).joined(separator: " "), result.stdout))
        }
        try json(["deploy", directory.path + "/schedules"] + database)
        #expect(try BelfryCommand.run(["run", "t.job"] + database).status == 0)
        try json(["trigger", "list"] + database)
        try json(["trigger", "show", "t.job", "hourly"] + database)
        try json(["runs"] + database)
        try json(["runs", "show", "1"] + database)
        try json(["stats"] + database)
        try json(["next", "@hourly", "--count", "1"])
        for (command, output) in outputs {
            var keys = Set<String>()
            func collect(_ value: Any) {
                if let object = value as? [String: Any] {
                    for (key, inner) in object {
                        keys.insert(key)
                        collect(inner)
                    }
                } else if let array = value as? [Any] {
                    array.forEach(collect)
                }
            }
            collect(try JSONSerialization.jsonObject(with: Data(output.utf8)))
            for key in keys.sorted() {
                #expect(text.contains("`\(key)`"), "docs/runs.md does not name the field `\(key)` of `belfry \(command) --json`")
            }
        }
    }

    /// Words of a command line as a POSIX shell splits them (single and double quotes, no
    /// expansion).
    static func shellWords(_ line: String) throws -> [String] {
        var words: [String] = []
        var word = ""
        var inWord = false
        var quote: Character?
        for character in line {
            if let open = quote {
                if character == open { quote = nil } else { word.append(character) }
            } else if character == "'" || character == "\"" {
                quote = character
                inWord = true
            } else if character == " " {
                if inWord { words.append(word) }
                word = ""
                inWord = false
            } else {
                word.append(character)
                inWord = true
            }
        }
        if inWord { words.append(word) }
        return words
    }
}
