import BelfryStore
import Foundation
import Subprocess
import SystemPackage

/// `belfry step NAME -- CMD` (SPEC §5): inside a run, CMD runs once; when it succeeds its stdout
/// and exit status are stored under (run, NAME), and a later attempt of the same run that reaches
/// the step gets the stored stdout back at once instead of running CMD again.
public enum Step {
    /// What happened, for the message on stderr.
    public enum Outcome: Equatable, Sendable {
        case replayed
        case ran(recorded: Bool)
        case outsideRun
    }

    /// The largest stdout stored for replay; a step printing more still runs, unrecorded.
    public static let maxStoredBytes = 16 << 20

    /// Runs or replays the step; returns its exit status. `write` receives stdout.
    public static func run(
        name: String, command: [String], book: (any StepBook)?,
        write: @escaping @Sendable (UnsafeRawBufferPointer) -> Void
    ) async throws -> (status: Int32, outcome: Outcome) {
        if let book, let stored = try await book.stored(name) {
            stored.stdout.withUnsafeBytes { write($0) }
            return (stored.exitCode, .replayed)
        }
        let captured = Captured()
        let status = try await execute(command) { chunk in
            write(chunk)
            captured.append(chunk)
        }
        guard let book else { return (status, .outsideRun) }
        if status == 0, let stdout = captured.data {
            try await book.record(name, exitCode: status, stdout: stdout)
            return (status, .ran(recorded: true))
        }
        return (status, .ran(recorded: false))
    }

    /// Runs a command with stdin and stderr inherited and stdout through `sink`; its exit status
    /// (128 + signal when a signal ended it, as shells report).
    private static func execute(_ command: [String], sink: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) async throws -> Int32 {
        guard let program = command.first else { return 64 }
        guard let pipe = makePipe() else { throw POSIXError(.EMFILE) }
        let pump = OutputPump(fd: pipe.read, sink: sink)
        let executable: Executable = program.contains("/") ? .path(FilePath(program)) : .name(program)
        let status: TerminationStatus
        do {
            status = try await Subprocess.run(
                executable, arguments: Arguments(Array(command.dropFirst())), input: .currentStandardInput,
                output: .fileDescriptor(FileDescriptor(rawValue: pipe.write), closeAfterSpawningProcess: false),
                error: .currentStandardError
            ).terminationStatus
        } catch {
            close(pipe.write)
            await pump.finish(patience: .seconds(1))
            throw error
        }
        close(pipe.write)
        await pump.finish(patience: .seconds(2))
        switch status {
        case .exited(let code): return code
        case .signaled(let signal): return 128 + signal
        }
    }

    /// Stdout kept for the record, up to `maxStoredBytes`.
    private final class Captured: @unchecked Sendable {
        private let lock = NSLock()
        private var bytes = Data()
        private var overflowed = false

        func append(_ chunk: UnsafeRawBufferPointer) {
            lock.withLock {
                guard !overflowed else { return }
                if bytes.count + chunk.count > Step.maxStoredBytes {
                    overflowed = true
                    bytes = Data()
                } else {
                    bytes.append(contentsOf: chunk)
                }
            }
        }

        var data: Data? { lock.withLock { overflowed ? nil : bytes } }
    }
}
