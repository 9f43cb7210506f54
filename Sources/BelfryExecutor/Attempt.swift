import CBelfrySpawn
import Foundation
import Synchronization
import SystemPackage

/// What one attempt launches.
struct AttemptCommand: Sendable {
    /// A path (with a `/`) or a name looked up in `$PATH`.
    var executable: String
    var arguments: [String]
    /// The whole environment of the process.
    var environment: [String: String]
    var workingDirectory: String?
    var user: JobUser?
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
            return AttemptOutcome(ending: .couldNotStart("\(error)"), timedOut: false, outputTail: Data())
        }
        guard let pipe = makePipe() else {
            return AttemptOutcome(ending: .couldNotStart("cannot create a pipe: \(String(cString: strerror(errno)))"), timedOut: false, outputTail: log.finish())
        }
        let echo = self.echo
        // Made once the process is there, with its descriptor: the pipe keeps what it prints
        // until then.
        let pump = Mutex<OutputPump?>(nil)
        // What follows the start: returns whether the attempt timed out. The output is read
        // from after `onStart` (which may wait for a burst's other processes to start: the pipe
        // keeps 64 KiB meanwhile).
        let attend = { @Sendable (pid: Int32) async throws -> Bool in
            try await onStart(pid)
            // A pidfd is opened now, not before the start: in a burst, every process started
            // meanwhile would have had a copy of it to close (the log file is made at the first
            // output, on the output's thread).
            let processDescriptor = belfry_pidfd_open(pid)
            defer { if processDescriptor >= 0 { close(processDescriptor) } }
            return await withTaskExecutorPreference(BookkeepingExecutor.shared) {
                let output = OutputPump(fd: pipe.read, processDescriptor: processDescriptor >= 0 ? processDescriptor : nil) { chunk in
                    log.append(chunk)
                    echo?(chunk)
                }
                pump.withLock { $0 = output }
                let group = ProcessGroup(id: pid)
                let timedOut = await supervise(group, output: output, onTimeout: onTimeout)
                // Whatever the attempt left behind in its group goes with it, now: the process
                // has ended but is not reaped yet, so its pid (the group's id) cannot have been
                // given to another process. Once reaped, a new attempt may get it, and a signal to
                // the group would kill that attempt.
                if await group.outlivesLeader { await group.terminate(killAt: .now + killGrace) }
                return timedOut
            }
        }
        let (ending, timedOut) = await launch(command, output: pipe.write, attend: attend)
        if let output = pump.withLock({ $0 }) {
            await output.finish(patience: .seconds(2))
        } else {
            close(pipe.read)  // the process never started: nothing was written
        }
        return AttemptOutcome(ending: ending, timedOut: timedOut, outputTail: log.finish())
    }

    /// Starts the attempt (`belfry_spawn`: vfork and system calls; the daemon spent a quarter
    /// less CPU per run in a burst of due triggers than through swift-subprocess), attends it,
    /// and reaps it.
    /// Closes `output`, the pipe's writing end, once the process has it.
    private func launch(
        _ command: AttemptCommand, output: Int32, attend: @Sendable (Int32) async throws -> Bool
    ) async -> (AttemptOutcome.Ending, Bool) {
        let started = Self.spawn(command, output: output)
        close(output)
        let pid: Int32
        switch started {
        case .failure(let error): return (.couldNotStart(Self.describe(error, command: command)), false)
        case .success(let spawned): pid = spawned
        }
        // Cancelled (the run is cancelled, the daemon stops): the group is taken down, as on a
        // timeout, and the attempt ends as its process does. The teardown is over before the
        // process is reaped: reaping frees its pid, the group's id, for another attempt.
        let teardown = Mutex<(attended: Bool, task: Task<Void, Never>?)>((false, nil))
        let killGrace = self.killGrace
        let attended: Result<Bool, any Error> = await withTaskCancellationHandler {
            do {
                return .success(try await attend(pid))
            } catch {
                return .failure(error)
            }
        } onCancel: {
            teardown.withLock { state in
                guard !state.attended else { return }
                state.task = Task { await ProcessGroup(id: pid).terminate(killAt: .now + killGrace) }
            }
        }
        let pending = teardown.withLock { (state: inout (attended: Bool, task: Task<Void, Never>?)) in
            state.attended = true
            return state.task
        }
        await pending?.value
        if case .failure = attended {
            await ProcessGroup(id: pid).terminate(killAt: .now + killGrace)
            await ProcessGroup.waitForExit(of: pid)
        }
        // The process has ended (zombie): this does not block.
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        switch attended {
        case .failure(let error):
            return (.couldNotStart(Self.describe(error, command: command)), false)
        case .success(let timedOut):
            // wait(2)'s status: the exit code in bits 8-15 when the low 7 bits are 0, else the signal.
            return (status & 0x7f == 0 ? .exited((status >> 8) & 0xff) : .signalled(status & 0x7f), timedOut)
        }
    }

    /// The process of `command` started, or why not: `vfork` (a fork when it runs as another
    /// user, who must be changed to before exec) with the program found as `execvp` would, in the
    /// job's own `PATH`.
    private static func spawn(_ command: AttemptCommand, output: Int32) -> Result<Int32, Errno> {
        let path: String
        switch resolve(command.executable, searchPath: searchPath(of: command)) {
        case .failure(let error): return .failure(error)
        case .success(let found): path = found
        }
        let arguments = ([command.executable] + command.arguments).map { strdup($0) } + [nil]
        let environment = command.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in arguments { free(pointer) }
            for pointer in environment { free(pointer) }
        }
        var pid: pid_t = 0
        let error =
            if let user = command.user {
                belfry_spawn_as(path, arguments, environment, command.workingDirectory, output, user.uid, user.gid,
                                user.groups, Int32(user.groups.count), &pid)
            } else {
                belfry_spawn(path, arguments, environment, command.workingDirectory, output, &pid)
            }
        return error == 0 ? .success(pid) : .failure(Errno(rawValue: error))
    }

    /// Where a command's program is looked for: the job's `PATH`, else the daemon's.
    private static func searchPath(of command: AttemptCommand) -> String {
        // getenv, not ProcessInfo's environment: that builds a dictionary of all of it each time.
        command.environment["PATH"] ?? getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
    }

    /// The program a command names: a path (with a `/`) as it is; a name, the first executable
    /// file of that name in the absolute directories of `searchPath`.
    private static func resolve(_ executable: String, searchPath: String) -> Result<String, Errno> {
        if executable.contains("/") { return .success(executable) }
        let directories = searchPath.split(separator: ":")
        var found = Errno.noSuchFileOrDirectory
        for directory in directories where directory.hasPrefix("/") {
            let candidate = "\(directory)/\(executable)"
            var info = stat()
            guard stat(candidate, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            if access(candidate, X_OK) == 0 { return .success(candidate) }
            found = .permissionDenied
        }
        return .failure(found)
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
        if let error = error as? CappedLog.Unwritable { return error.description }
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
        if !command.executable.contains("/"), let error = error as? Errno, error == .noSuchFileOrDirectory {
            return "\(command.executable): not found in PATH \(searchPath(of: command))"
        }
        return "cannot start \(command.executable): \(error)"
    }
}
