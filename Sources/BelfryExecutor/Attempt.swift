import Foundation
import Synchronization
import Subprocess
import SystemPackage

/// What one attempt launches.
struct AttemptCommand: Sendable {
    /// A path (with a `/`) or a name looked up in `$PATH`.
    var executable: String
    var arguments: [String]
    /// The whole environment of the process.
    var environment: [String: String]
    var workingDirectory: String?
    var user: (uid: UInt32, gid: UInt32)?
}

/// A step of taking down an attempt that ran past its `maxRuntime`.
enum TimeoutStep: Sendable {
    /// SIGTERM sent to the process group `pid`.
    case terminated(pid: Int32)
    /// SIGKILL sent, the grace having passed.
    case killed(pid: Int32)
}

/// How an attempt ended.
struct AttemptOutcome: Sendable {
    enum Ending: Sendable, Equatable {
        case exited(Int32)
        case signalled(Int32)
        /// The process could not be started at all (missing program, bad directory, ...).
        case couldNotStart(String)
    }

    var ending: Ending
    var timedOut: Bool
    var outputTail: Data
}

/// Runs one attempt: a process in its own session (so the whole group can be signalled), its
/// output streamed through a capped log, `maxRuntime` enforced with SIGTERM to the group and
/// SIGKILL after `killGrace`. Nothing the attempt started survives it, unless it made a session
/// of its own.
struct AttemptRunner<C: Clock> where C.Duration == Duration {
    let clock: C
    var maxRuntime: Duration?
    var killGrace: Duration
    var maxOutputBytes: Int
    /// Called with each chunk of output as it arrives (the terminal of `belfry run`).
    var echo: (@Sendable (UnsafeRawBufferPointer) -> Void)?

    func run(
        _ command: AttemptCommand, logPath: String, onTimeout: @escaping @Sendable (TimeoutStep) -> Void = { _ in },
        onStart: @Sendable (Int32) async throws -> Void
    ) async -> AttemptOutcome {
        let log: CappedLog
        do {
            log = try CappedLog(path: logPath, limit: maxOutputBytes)
        } catch {
            return AttemptOutcome(ending: .couldNotStart("cannot write the log \(logPath): \(error.localizedDescription)"), timedOut: false, outputTail: Data())
        }
        guard let pipe = makePipe() else {
            return AttemptOutcome(ending: .couldNotStart("cannot create a pipe: \(String(cString: strerror(errno)))"), timedOut: false, outputTail: log.finish())
        }
        let echo = self.echo
        // Made once the process is there, with its descriptor: the pipe keeps what it prints
        // until then.
        let pump = Mutex<OutputPump?>(nil)
        let startPump = { @Sendable (process: Int32) -> OutputPump in
            let made = OutputPump(fd: pipe.read, processDescriptor: process) { chunk in
                log.append(chunk)
                echo?(chunk)
            }
            pump.withLock { $0 = made }
            return made
        }
        var options = PlatformOptions()
        options.createSession = true
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: killGrace)]
        if let user = command.user {
            options.userID = user.uid
            options.groupID = user.gid
        }
        let executable: Executable = command.executable.contains("/") ? .path(FilePath(command.executable)) : .name(command.executable)
        var ending: AttemptOutcome.Ending
        var timedOut = false
        do {
            let result = try await Subprocess.run(
                executable, arguments: Arguments(command.arguments),
                environment: .custom(Dictionary(uniqueKeysWithValues: command.environment.map { (Environment.Key(rawValue: $0.key)!, $0.value) })),
                workingDirectory: command.workingDirectory.map { FilePath($0) }, platformOptions: options,
                // The same pipe for both streams, closed by us once the process is gone: with
                // `.combinedWithOutput` the library keeps a duplicate of it open in this process.
                input: .none, output: .fileDescriptor(FileDescriptor(rawValue: pipe.write), closeAfterSpawningProcess: false),
                error: .fileDescriptor(FileDescriptor(rawValue: pipe.write), closeAfterSpawningProcess: false)
            ) { execution in
                let pid = execution.processIdentifier.value
                let output = startPump(execution.processIdentifier.processDescriptor)
                try await onStart(pid)
                let group = ProcessGroup(id: pid)
                let timedOut = await supervise(group, output: output, onTimeout: onTimeout)
                // Whatever the attempt left behind in its group goes with it, now: the process
                // has ended but is not reaped until this closure returns, so its pid (the
                // group's id) cannot have been given to another process. Once reaped, a new
                // attempt may get it, and a signal to the group would kill that attempt.
                if group.outlivesLeader { await group.terminate(killAt: .now + killGrace) }
                return timedOut
            }
            close(pipe.write)
            timedOut = result.closureResult
            switch result.terminationStatus {
            case .exited(let code): ending = .exited(code)
            case .signaled(let signal): ending = .signalled(signal)
            }
        } catch {
            close(pipe.write)
            ending = .couldNotStart(Self.describe(error, command: command))
        }
        if let output = pump.withLock({ $0 }) {
            await output.finish(patience: .seconds(2))
        } else {
            close(pipe.read)  // the process never started: nothing was written
        }
        return AttemptOutcome(ending: ending, timedOut: timedOut, outputTail: log.finish())
    }

    /// Waits for the attempt's process to end; past `maxRuntime`, terminates its group. Returns
    /// whether it timed out.
    private func supervise(_ group: ProcessGroup, output: OutputPump, onTimeout: @escaping @Sendable (TimeoutStep) -> Void) async -> Bool {
        await withTaskGroup(of: Bool.self) { tasks in
            tasks.addTask {
                if output.watchesExit {
                    await output.exited()
                } else {
                    await ProcessGroup.waitForExit(of: group.id)
                }
                return false
            }
            if let maxRuntime {
                tasks.addTask {
                    do {
                        try await clock.sleep(for: maxRuntime)
                        return true
                    } catch {
                        return false  // cancelled: the process ended first
                    }
                }
            }
            let timedOut = await tasks.next()!
            if timedOut {
                onTimeout(.terminated(pid: group.id))
                await group.terminate(killAt: .now + killGrace) { onTimeout(.killed(pid: group.id)) }
            }
            tasks.cancelAll()
            await tasks.waitForAll()
            return timedOut
        }
    }

    private static func describe(_ error: any Error, command: AttemptCommand) -> String {
        if let directory = command.workingDirectory {
            var isDirectory: ObjCBool = false
            if !FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) || !isDirectory.boolValue {
                return "working directory \(directory) does not exist"
            }
        }
        if command.executable.contains("/") {
            if !FileManager.default.fileExists(atPath: command.executable) {
                return "\(command.executable): no such file"
            }
            var info = stat()
            if stat(command.executable, &info) == 0, info.st_mode & 0o111 == 0 || (info.st_mode & S_IFMT) != S_IFREG {
                return "\(command.executable): not executable"
            }
        }
        return "cannot start \(command.executable): \(error)"
    }
}
