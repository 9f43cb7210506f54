import BelfryTesting
import Foundation
import Testing

/// `systemd/belfry.service` passes `systemd-analyze verify` and rates 2.0 or lower in
/// `systemd-analyze security` (with ExecStart pointed at the binary just built, since verify
/// checks that it exists).
@Suite("systemd unit")
struct SystemdUnitTests {
    static let analyze = "/usr/bin/systemd-analyze"
    static let unit = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("systemd/belfry.service")

    static func analyze(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: analyze)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    @Test("verify passes and the exposure level is 2.0 or lower",
          .enabled(if: FileManager.default.isExecutableFile(atPath: analyze), "needs systemd-analyze (Debian package systemd)"))
    func unitFile() throws {
        let directory = try TemporaryDirectory()
        let text = try String(contentsOf: Self.unit, encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/belfry", with: BelfryCommand.executable.path)
        let copy = try directory.write("belfry.service", text)
        let verify = try Self.analyze(["verify", copy])
        #expect(verify.status == 0, "\(verify.output)")
        let security = try Self.analyze(["security", "--offline=true", copy])
        let line = try #require(security.output.split(separator: "\n").last { $0.contains("Overall exposure level") })
        let level = try #require(line.split(separator: ":").last?.split(separator: " ").first.flatMap { Double($0) })
        #expect(level <= 2.0, "\(line)")
    }
}
