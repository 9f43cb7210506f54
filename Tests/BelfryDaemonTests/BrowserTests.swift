import BelfryTesting
import Foundation
import Testing

/// Whether headless Chromium can be driven here: chromium, chromedriver and Python's selenium.
enum Browser {
    static var available: Bool {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium"),
            FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver")
        else { return false }
        return (try? run(["/usr/bin/env", "python3", "-c", "import selenium"]).status) == 0
    }

    static let skipReason = "no chromium, chromedriver or Python selenium here (.ci/run installs them)"

    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

@Suite("The dashboard in a real browser", .enabled(if: Browser.available, Comment(rawValue: Browser.skipReason)))
struct BrowserTests {
    @Test("headless Chromium: login, deactivate (the CLI agrees), run now with a live log, markup from jobs shown as text")
    func dashboard() async throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/browser-test.py").path
        let result = try await offThePool { try Browser.run(["/usr/bin/env", "python3", script, "--belfry", BelfryCommand.executable.path]) }
        #expect(result.status == 0, "\(result.output)")
    }
}
