import Foundation

/// Runs the built `belfry` executable as a user would, for tests.
public enum BelfryCommand {
    /// What a run printed and how it ended.
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// The executable, found next to the test bundle (the same products directory).
    public static var executable: URL {
        let candidates = [Bundle.main.bundleURL, URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
            + Bundle.allBundles.map { $0.bundleURL.deletingLastPathComponent() }
        for directory in candidates {
            let url = directory.appendingPathComponent("belfry")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return candidates[0].appendingPathComponent("belfry")
    }

    /// `launcher`: a command that runs the executable (`setpriv --reuid=...`), given `executable`
    /// (default: the built one) then `arguments`.
    public static func run(
        _ arguments: [String], environment: [String: String] = [:], launcher: [String] = [], executable: URL = executable
    ) throws -> Result {
        let process = Process()
        if let program = launcher.first {
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = launcher.dropFirst() + [executable.path] + arguments
        } else {
            process.executableURL = executable
            process.arguments = arguments
        }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes while the process runs, so that neither fills up and blocks it.
        let stderrData = LockedData()
        let reader = Thread { stderrData.set(err.fileHandleForReading.readDataToEndOfFile()) }
        reader.start()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !stderrData.isSet { usleep(1000) }
        return Result(
            status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderrData.value, as: UTF8.self))
    }

    public static func run(_ arguments: String...) throws -> Result {
        try run(arguments)
    }
}

private final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data: Data?

    func set(_ value: Data) { lock.withLock { data = value } }
    var isSet: Bool { lock.withLock { data != nil } }
    var value: Data { lock.withLock { data ?? Data() } }
}

/// A temporary directory removed when the value is released.
public final class TemporaryDirectory: Sendable {
    public let path: String

    public init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("belfry-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Writes a file under the directory and returns its path.
    @discardableResult
    public func write(_ name: String, _ contents: String) throws -> String {
        let file = (path as NSString).appendingPathComponent(name)
        try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(contents.utf8).write(to: URL(fileURLWithPath: file))
        return file
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Whether `pid` is a live process (a zombie is not).
public func isAlive(_ pid: Int32) -> Bool {
    guard kill(pid, 0) == 0 else { return false }
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return true }
    return stat[stat.index(after: close)...].split(separator: " ").first != "Z"
}

/// The PostgreSQL server the tests may use: `BELFRY_TEST_POSTGRES_URL` (a superuser URL), set
/// by `scripts/with-postgres.sh`. Without it the PostgreSQL tests are skipped.
public enum TestPostgres {
    public static var url: String? {
        ProcessInfo.processInfo.environment["BELFRY_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    public static let skipReason = "BELFRY_TEST_POSTGRES_URL is not set: no PostgreSQL server (scripts/with-postgres.sh swift test runs these)"

    /// A new, empty database on the test server; its URL.
    public static func freshDatabase() throws -> String {
        guard let url = url, var components = URLComponents(string: url) else { throw CocoaError(.featureUnsupported) }
        let name = "belfry_test_" + UUID().uuidString.prefix(8).lowercased()
        _ = try sql(url, "CREATE DATABASE \(name)")
        components.path = "/" + name
        return components.string!
    }

    /// A new role with a password, owning the database at `url` (the test server asks every role
    /// but its superuser for a password); the database's URL as that role, password included.
    public static func passwordRole(_ url: String, password: String) throws -> String {
        var components = URLComponents(string: url)!
        let role = "belfry_role_" + UUID().uuidString.prefix(8).lowercased()
        try sql(url, "CREATE ROLE \(role) LOGIN PASSWORD '\(password)'")
        try sql(url, "ALTER DATABASE \(components.path.dropFirst()) OWNER TO \(role)")
        components.user = role
        components.password = password
        return components.string!
    }

    /// Runs SQL through `psql` on the database at `url` (without its password: the test server
    /// trusts its users); returns the unaligned, tuples-only output.
    @discardableResult
    public static func sql(_ url: String, _ statement: String) throws -> String {
        var components = URLComponents(string: url)!
        components.password = nil
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        process.arguments = ["-qXAt", "-v", "ON_ERROR_STOP=1", components.string!, "-c", statement]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "psql failed: \(statement)"]) }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Runs blocking work (waiting for a process, reading its output to the end) on a thread of its
/// own, not on one of the cooperative threads async code runs on: there are as many of those as
/// cores (two here), and a test blocking one for seconds starves every other test's tasks, so a
/// timeout under test fires a minute late.
public func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

extension Process {
    /// Waits for the process to end, off the cooperative threads (see `offThePool`).
    public func ended() async {
        _ = try? await offThePool { self.waitUntilExit() }
    }
}
