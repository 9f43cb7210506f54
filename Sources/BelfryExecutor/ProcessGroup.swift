import Foundation

/// The process group of one attempt: the attempt's process is a session leader, so its pid is
/// the group's id, and every process it starts belongs to the group unless it makes a session
/// of its own.
struct ProcessGroup: Sendable {
    let id: Int32

    /// Whether a live process of the group is still there. Zombies do not count: once a member's
    /// parent has died it is reparented, and where PID 1 does not reap (containers) it stays a
    /// zombie for good.
    ///
    /// Asked at the end of every attempt, so it is cheap: `getpgid(2)` of each process in
    /// `/proc` (one system call each, no file read), and `/proc/PID/stat` only for members.
    var exists: Bool {
        guard kill(-id, 0) == 0 else { return false }
        guard let directory = opendir("/proc") else { return true }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let pid = withUnsafeBytes(of: entry.pointee.d_name) { name -> Int32 in
                var value: Int32 = 0
                for byte in name {
                    if byte == 0 { break }
                    guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return 0 }
                    value = value &* 10 &+ Int32(byte - UInt8(ascii: "0"))
                }
                return value
            }
            guard pid > 0, getpgid(pid) == id else { continue }
            if let process = ProcessStatus(pid: String(pid)), process.group == id, !process.isZombie { return true }
        }
        return false
    }

    /// SIGTERM to the whole group, then SIGKILL to whatever is left at `deadline`. Runs to the
    /// end even when the calling task is cancelled: that is when it matters most.
    /// `onKill` is called when SIGKILL is sent.
    func terminate(killAt deadline: ContinuousClock.Instant, onKill: () -> Void = {}) async {
        guard kill(-id, SIGTERM) == 0 else { return }  // nothing left
        while ContinuousClock.now < deadline {
            if !exists { return }
            await Self.pause()
        }
        onKill()
        kill(-id, SIGKILL)
        // SIGKILL cannot be ignored; give the kernel a moment to take them down.
        for _ in 0..<100 where exists {
            await Self.pause()
        }
    }

    /// 10 ms, not cut short by cancellation, and on a thread of its own: not delayed when the
    /// cooperative threads are busy.
    private static func pause() async {
        try? await pollWait(.milliseconds(10))
    }

    /// Waits, on a thread of its own, until the process `pid` has ended, without reaping it (the
    /// process library reaps it afterwards).
    static func waitForExit(of pid: Int32) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let thread = Thread {
                var info = siginfo_t()
                while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0, errno == EINTR {}
                continuation.resume()
            }
            thread.name = "belfry-wait-\(pid)"
            thread.start()
        }
    }
}

/// Takes down what an attempt of a previous daemon left running (the daemon was killed and its
/// jobs' sessions outlived it). Only a session leader is taken for one: every attempt is one, and
/// a reused pid seldom is.
public func terminateOrphanedAttempt(pid: Int32, grace: Duration) async {
    guard let process = ProcessStatus(pid: String(pid)), process.session == pid else { return }
    await ProcessGroup(id: pid).terminate(killAt: .now + grace)
}

/// Takes down the process groups of attempts of the given runs that are still alive, found by
/// the environment every attempt is started with (`BELFRY_DATABASE`, `BELFRY_RUN_ID`): a
/// daemon killed between starting a process and recording its pid leaves one it cannot find
/// otherwise. Returns the groups taken down.
@discardableResult
public func terminateOrphanedAttempts(database: String, runs: Set<Int64>, grace: Duration) async -> [Int32] {
    guard !runs.isEmpty, let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    let databaseVariable = Array("BELFRY_DATABASE=\(database)".utf8)
    let runPrefix = Array("BELFRY_RUN_ID=".utf8)
    var groups: Set<Int32> = []
    for entry in entries where entry.first?.isNumber == true {
        guard let pid = Int32(entry), pid != getpid(),
            let environment = FileManager.default.contents(atPath: "/proc/\(entry)/environ")
        else { continue }
        var ownDatabase = false
        var runID: Int64?
        for variable in environment.split(separator: 0) {
            if variable.elementsEqual(databaseVariable) { ownDatabase = true }
            if variable.starts(with: runPrefix) { runID = Int64(String(decoding: variable.dropFirst(runPrefix.count), as: UTF8.self)) }
        }
        guard ownDatabase, let runID, runs.contains(runID), let status = ProcessStatus(pid: entry), !status.isZombie,
            status.group > 1, status.group != getpgrp()
        else { continue }
        groups.insert(status.group)
    }
    for group in groups { await ProcessGroup(id: group).terminate(killAt: .now + grace) }
    return groups.sorted()
}

/// What `/proc/PID/stat` says of a process: `pid (comm) state ppid pgrp session ...`, where
/// comm may hold spaces and parentheses.
struct ProcessStatus {
    var isZombie: Bool
    var parent: Int32
    var group: Int32
    var session: Int32

    init?(pid: String) {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else {
            return nil
        }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 3, let parent = Int32(fields[1]), let group = Int32(fields[2]), let session = Int32(fields[3]) else { return nil }
        (isZombie, self.parent, self.group, self.session) = (fields[0] == "Z", parent, group, session)
    }
}

/// A pipe whose ends are closed on exec, so that no other child inherits them.
func makePipe() -> (read: Int32, write: Int32)? {
    var fds: [Int32] = [-1, -1]
    guard pipe(&fds) == 0 else { return nil }
    _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
    _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
    return (fds[0], fds[1])
}

/// Reads a pipe until every writer has closed it, handing each chunk to `sink`, on a thread of
/// its own (blocking reads see every byte up to end-of-file, however the writers end).
final class OutputPump: @unchecked Sendable {
    private let fd: Int32
    private let sink: @Sendable (UnsafeRawBufferPointer) -> Void
    private let done = DispatchSemaphore(value: 0)
    private let stopLock = NSLock()
    private var stopRequested = false

    init(fd: Int32, sink: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) {
        self.fd = fd
        self.sink = sink
        let thread = Thread { [self] in pump() }
        thread.name = "belfry-output"
        thread.start()
    }

    private func pump() {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while true {
            let ready = poll(&poller, 1, 100)
            if ready == 0 {
                if stopLock.withLock({ stopRequested }) { break }
                continue
            }
            if ready < 0 { if errno == EINTR { continue } else { break } }
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }  // every writer has closed the pipe
            buffer.withUnsafeBytes { raw in sink(UnsafeRawBufferPointer(rebasing: raw[0..<count])) }
        }
        close(fd)
        done.signal()
    }

    /// Waits until the pipe is drained. A process that escaped the group (its own session) may
    /// hold the pipe open: after `patience` the pump stops anyway.
    func finish(patience: Duration) async {
        let gotEOF = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let thread = Thread { [done] in
                let seconds = Double(patience.components.seconds) + Double(patience.components.attoseconds) / 1e18
                continuation.resume(returning: done.wait(timeout: .now() + seconds) == .success)
            }
            thread.start()
        }
        if !gotEOF {
            stopLock.withLock { stopRequested = true }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let thread = Thread { [done] in
                    done.wait()
                    continuation.resume()
                }
                thread.start()
            }
        }
    }
}

/// Waits `duration` (short: seconds at most) in `poll(2)` on a thread of its own. The daemon's
/// loop and process teardown wait this way, not on a dispatch timer: busy cooperative threads do
/// not delay it, and time-faking tools (libfaketime, for accelerated DST days) scale `poll`
/// timeouts but leave dispatch's timers armed at deadlines computed from faked clocks.
public func pollWait(_ duration: Duration) async throws {
    let milliseconds = Int32(clamping: duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let thread = Thread {
            _ = poll(nil, 0, milliseconds)
            continuation.resume()
        }
        thread.name = "belfry-wait"
        thread.start()
    }
    try Task.checkCancellation()
}
