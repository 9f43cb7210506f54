import BelfrySchedule
import Foundation
import Yams

/// Reads `schedules/*.yaml` (SPEC §2) into validated `Definitions`, or reports every problem of
/// every file at once, each with file, line and column.
public enum DefinitionLoader {
    /// Files larger than this are refused: a definition file is read whole into memory.
    public static let maxFileBytes = 16 << 20

    /// Loads every `.yaml` / `.yml` file directly inside `directory`, in name order.
    public static func load(directory: String, zones: TimeZoneDatabase = .system) throws(DefinitionErrors) -> Definitions {
        let (files, problems) = try readDirectory(directory)
        return try load(files: files, zones: zones, problems: problems)
    }

    /// The fingerprint of every definition file in `directory` (path → fingerprint, as
    /// `EnvironmentDefinition.sourceHash`), read without parsing them; nil when the directory or
    /// a file cannot be read (`load` says why). A deploy compares it with what is deployed.
    public static func fingerprints(directory: String) -> [String: String]? {
        guard let contents = try? readDirectory(directory), contents.problems.isEmpty else { return nil }
        let files = contents.files
        return Dictionary(files.map { ($0.path, EnvironmentReader.fingerprint($0.bytes)) }, uniquingKeysWith: { a, _ in a })
    }

    /// The bytes of every definition file directly inside `directory`, in name order, and the
    /// files that could not be read.
    private static func readDirectory(_ directory: String) throws(DefinitionErrors) -> (files: [(path: String, bytes: [UInt8])], problems: [Diagnostic]) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw DefinitionErrors([Diagnostic(file: directory, line: 0, column: 0, message: "no such directory",
                                               hint: "give the schedules directory with --schedules DIR")])
        }
        guard isDirectory.boolValue else {
            let parent = (directory as NSString).deletingLastPathComponent
            throw DefinitionErrors([Diagnostic(file: directory, line: 0, column: 0, message: "a file, not a directory",
                                               hint: "give the directory that holds the definition files (\(parent.isEmpty ? "." : parent))")])
        }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw DefinitionErrors([Diagnostic(file: directory, line: 0, column: 0, message: "cannot list the directory: \(error.localizedDescription)")])
        }
        let yamlNames = names.filter { ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml")) && !$0.hasPrefix(".") }.sorted()
        guard !yamlNames.isEmpty else {
            throw DefinitionErrors([Diagnostic(file: directory, line: 0, column: 0, message: "no definition files (*.yaml) in this directory",
                                               hint: "see schedules/ in the Belfry repository for examples")])
        }
        var files: [(path: String, bytes: [UInt8])] = []
        var problems: [Diagnostic] = []
        for name in yamlNames {
            let path = (directory as NSString).appendingPathComponent(name)
            switch readFile(path) {
            case .success(let bytes): files.append((path, bytes))
            case .failure(let problem): problems.append(problem)
            }
        }
        return (files, problems)
    }

    /// Loads definition files given as bytes (the directory loader and tests use this).
    /// `now`: DST notes speak of the changes after it.
    public static func load(
        files: [(path: String, bytes: [UInt8])], zones: TimeZoneDatabase = .system, problems: [Diagnostic] = [], now: Instant = .now
    ) throws(DefinitionErrors) -> Definitions {
        var diagnostics = problems
        var notices: [Diagnostic] = []
        var environments: [EnvironmentDefinition] = []
        var declaredQueues: [String: (concurrency: Int, file: String, node: Node)] = [:]
        var references: [(queue: String, file: String, node: Node)] = []
        var environmentFiles: [String: String] = [:]
        // Files are independent until the cross-file checks: read them on every core.
        let readers = Self.readConcurrently(files, zones: zones, now: now)
        for (file, result) in zip(files, readers) {
            var reader = result.reader
            if let environment = result.environment {
                if let other = environmentFiles[environment.name] {
                    reader.file.error(reader.environmentNameNode, "environment \"\(environment.name)\" is also defined in \(other)",
                                      hint: "environment names must be unique")
                } else {
                    environmentFiles[environment.name] = file.path
                    environments.append(environment)
                }
            }
            for (queue, declaration) in reader.queues {
                if let earlier = declaredQueues[queue], earlier.concurrency != declaration.concurrency {
                    reader.file.error(declaration.node, "queue \"\(queue)\" is declared again with concurrency \(declaration.concurrency)",
                                      hint: "\(earlier.file) declares it with \(earlier.concurrency)")
                } else {
                    declaredQueues[queue] = (declaration.concurrency, file.path, declaration.node)
                }
            }
            references += reader.queueReferences.map { ($0.queue, file.path, $0.node) }
            diagnostics += reader.file.diagnostics
            notices += reader.file.notices
        }
        // Queues: declared under `queues:`, or named by an environment's `queue` (default limit).
        // Tasks and triggers must name a known queue, so that a typo does not make a new one.
        var queues = declaredQueues.mapValues(\.concurrency)
        for environment in environments {
            if let queue = environment.queue, queues[queue] == nil { queues[queue] = 16 }
        }
        if queues["default"] == nil { queues["default"] = 16 }
        for reference in references where queues[reference.queue] == nil {
            let known = Array(queues.keys).sorted()
            diagnostics.append(Diagnostic(
                file: reference.file, line: reference.node.mark?.line ?? 0, column: reference.node.mark?.column ?? 0,
                message: "unknown queue \"\(reference.queue)\"",
                hint: closest(to: reference.queue, in: known).map { "did you mean \"\($0)\"?" }
                    ?? "declare it under queues: in a definition file, or use one of: \(known.joined(separator: ", "))"))
        }
        guard diagnostics.isEmpty else { throw DefinitionErrors(diagnostics) }
        return Definitions(environments: environments, queues: queues, notices: notices)
    }

    private final class Slot: @unchecked Sendable {
        var value: (reader: EnvironmentReader, environment: EnvironmentDefinition?)?
    }

    /// From this many bytes of definitions on, files are read on every core.
    static let concurrentBytes = 256 * 1024

    private static func readConcurrently(
        _ files: [(path: String, bytes: [UInt8])], zones: TimeZoneDatabase, now: Instant
    ) -> [(reader: EnvironmentReader, environment: EnvironmentDefinition?)] {
        @Sendable func read(_ index: Int) -> (reader: EnvironmentReader, environment: EnvironmentDefinition?) {
            var reader = EnvironmentReader(path: files[index].path, zones: zones, now: now)
            let environment = reader.read(files[index].bytes)
            return (reader, environment)
        }
        // A few small files (the usual directory) are read on this thread: starting Dispatch's
        // worker threads took longer than reading them (`belfry validate` of the shipped
        // schedules: 6.9-7.2 -> 5.9-6.3 ms, hyperfine).
        if files.reduce(0, { $0 + $1.bytes.count }) < Self.concurrentBytes {
            return files.indices.map(read)
        }
        // Each slot is written by exactly one iteration, and read after all of them finish.
        let slots = files.map { _ in Slot() }
        DispatchQueue.concurrentPerform(iterations: files.count) { index in
            slots[index].value = read(index)
        }
        return slots.map { $0.value! }
    }

    /// The file's bytes, or why they cannot be had (missing, a link loop, too large, unreadable).
    private static func readFile(_ path: String) -> Result<[UInt8], Diagnostic> {
        func problem(_ message: String, hint: String? = nil) -> Result<[UInt8], Diagnostic> {
            .failure(Diagnostic(file: path, line: 0, column: 0, message: message, hint: hint))
        }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            switch errno {
            case ELOOP: return problem("is a symbolic link loop")
            case ENOENT: return problem("is a broken symbolic link")
            default: return problem("cannot be read: \(String(cString: strerror(errno)))")
            }
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            return problem("is not a regular file")
        }
        guard info.st_size <= maxFileBytes else {
            return problem("is \(info.st_size >> 20) MiB", hint: "definition files are limited to \(maxFileBytes >> 20) MiB; split it into several files")
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return problem("cannot be read: \(String(cString: strerror(errno)))") }
            offset += count
        }
        return .success(bytes)
    }
}
