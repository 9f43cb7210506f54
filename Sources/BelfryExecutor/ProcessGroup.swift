import Foundation
import CBelfrySpawn
import Synchronization

/// The process group of one attempt: the attempt's process is a session leader, so its pid is
/// the group's id, and every process it starts belongs to the group unless it makes a session
/// of its own.
struct ProcessGroup: Sendable {
    let id: Int32

    /// Whether a live process of the group is still there. Zombies do not count: once a member's
    /// parent has died it is reparented, and where PID 1 does not reap (containers) it stays a
    /// zombie for good.
    var exists: Bool {
        get async { await GroupCensus.shared.hasLiveMember(group: id, leaderEnded: false) }
    }

    /// `exists`, once the leader (the attempt's process) has ended but is not yet reaped: its
    /// `/proc` entry is not read, which in the usual case (nothing left) is the only one found.
    var outlivesLeader: Bool {
        get async { await GroupCensus.shared.hasLiveMember(group: id, leaderEnded: true) }
    }

    /// SIGTERM to the whole group, then SIGKILL to whatever is left at `deadline`. Runs to the
    /// end even when the calling task is cancelled: that is when it matters most.
    /// `onKill` is called when SIGKILL is sent.
    func terminate(killAt deadline: ContinuousClock.Instant, onKill: () -> Void = {}) async {
        guard kill(-id, SIGTERM) == 0 else { return }  // nothing left
        while ContinuousClock.now < deadline {
            if await !exists { return }
            await Self.pause()
        }
        onKill()
        kill(-id, SIGKILL)
        // SIGKILL cannot be ignored; give the kernel a moment to take them down.
        for _ in 0..<100 {
            guard await exists else { return }
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

/// Which of the groups asked about still have a live member, found by one pass over `/proc` (a
/// `getpgid` of each process) for all the questions asked since the previous pass began. Asked at
/// the end of every attempt: in a burst, a pass each had cost O(attempts × processes) system
/// calls (40,000 `getpgid` a second for 200 every-second triggers).
final class GroupCensus: Sendable {
    static let shared = GroupCensus()

    private struct Question {
        let group: Int32
        let leaderEnded: Bool
        let answer: CheckedContinuation<Bool, Never>
    }

    /// The questions not yet taken by a pass, and whether a caller is making passes.
    private let state = Mutex<(questions: [Question], counting: Bool)>(([], false))

    /// Whether a live process is in `group`; with `leaderEnded`, the group's leader is left out.
    /// The first caller to find no pass under way makes passes, on its thread, until no
    /// question is left; the others wait for the first pass that begins after they asked.
    func hasLiveMember(group: Int32, leaderEnded: Bool) async -> Bool {
        guard kill(-group, 0) == 0 else { return false }  // nobody, not even a zombie
        return await withCheckedContinuation { answer in
            let leads = state.withLock { state in
                state.questions.append(Question(group: group, leaderEnded: leaderEnded, answer: answer))
                defer { state.counting = true }
                return !state.counting
            }
            guard leads else { return }
            while true {
                let questions = state.withLock { state in
                    defer { state.questions.removeAll(keepingCapacity: true) }
                    if state.questions.isEmpty { state.counting = false }
                    return state.questions
                }
                if questions.isEmpty { return }
                Self.answer(questions)
            }
        }
    }

    /// One pass over `/proc`: `getpgid` for every process (one system call, no file read), and
    /// `/proc/PID/stat` only for the members of the groups asked about.
    private static func answer(_ questions: [Question]) {
        let groups = Set(questions.map(\.group))
        let leadersSkipped = groups.subtracting(questions.lazy.filter { !$0.leaderEnded }.map(\.group))
        var withLiveMember: Set<Int32> = []
        var withLiveLeader: Set<Int32> = []
        if let directory = opendir("/proc") {
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
                guard pid > 0, !leadersSkipped.contains(pid) else { continue }
                let group = getpgid(pid)
                guard groups.contains(group), !withLiveMember.contains(group),
                    let process = ProcessStatus(pid: String(pid)), process.group == group, !process.isZombie
                else { continue }
                if pid == group { withLiveLeader.insert(group) } else { withLiveMember.insert(group) }
            }
        } else {
            withLiveMember = groups  // cannot tell: assume the worst, as a teardown would
        }
        for question in questions {
            let live = withLiveMember.contains(question.group) || (!question.leaderEnded && withLiveLeader.contains(question.group))
            question.answer.resume(returning: live)
        }
    }
}

/// Takes down what an attempt of a previous daemon left running (the daemon was killed and its
/// jobs' sessions outlived it). Only a session leader is taken for one: every attempt is one, and
/// a reused pid seldom is. Returns whether one was found.
@discardableResult
public func terminateOrphanedAttempt(pid: Int32, grace: Duration) async -> Bool {
    guard let process = ProcessStatus(pid: String(pid)), process.session == pid, !process.isZombie else { return false }
    await ProcessGroup(id: pid).terminate(killAt: .now + grace)
    return true
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
        // Read with one system call into a buffer: asked for every member of a group at the end
        // of every attempt. The fields wanted are within the first few hundred bytes.
        let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        guard count > 0, let close = buffer[..<count].lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = buffer[(close + 1)..<count].split(separator: UInt8(ascii: " "))
        func number(_ field: ArraySlice<UInt8>) -> Int32? { Int32(String(decoding: field, as: UTF8.self)) }
        guard fields.count > 3, let parent = number(fields[1]), let group = number(fields[2]), let session = number(fields[3]) else { return nil }
        (isZombie, self.parent, self.group, self.session) = (fields[0] == [UInt8(ascii: "Z")], parent, group, session)
    }
}

/// A pipe whose ends are closed on exec, so that no other child inherits them.
func makePipe() -> (read: Int32, write: Int32)? {
    var fds: [Int32] = [-1, -1]
    guard belfry_pipe_cloexec(&fds) == 0 else { return nil }
    return (fds[0], fds[1])
}

/// Reads a pipe until every writer has closed it, handing each chunk to `sink`, on a thread of
/// its own (blocking reads see every byte up to end-of-file, however the writers end). Given a
/// process descriptor (pidfd), the same thread tells when that process has ended (`exited()`):
/// one thread per attempt, not one for the output and one for the exit.
final class OutputPump: @unchecked Sendable {
    private let fd: Int32
    private let sink: @Sendable (UnsafeRawBufferPointer) -> Void
    /// The watched process's descriptor (our own duplicate), -1 once it ended or if none; and,
    /// once `finish` is called, when the pump stops even without end-of-file.
    private let state: Mutex<(process: Int32, stopAt: ContinuousClock.Instant?)>
    private let processEnd = Latch()
    private let outputEnd = Latch()

    /// `processDescriptor`: a pidfd of the process whose end `exited()` waits for; duplicated
    /// here, so the caller's may be closed whenever.
    init(fd: Int32, processDescriptor: Int32? = nil, sink: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) {
        self.fd = fd
        self.sink = sink
        let own = processDescriptor.map { fcntl($0, F_DUPFD_CLOEXEC, 0) } ?? -1
        watchesExit = own >= 0
        state = Mutex((own, nil))
        if own < 0 { processEnd.open() }
        let thread = Thread { [self] in pump() }
        thread.name = "belfry-output"
        thread.start()
    }

    /// Whether `exited()` tells when the process ended: false without a process descriptor, or
    /// when it could not be duplicated (`exited()` then returns at once).
    let watchesExit: Bool

    private func pump() {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var pipeOpen = true
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: -1, events: Int16(POLLIN), revents: 0)]
        while true {
            let (process, stopAt) = state.withLock { ($0.process, $0.stopAt) }
            if !pipeOpen && process < 0 { break }
            if let stopAt, ContinuousClock.now >= stopAt { break }
            fds[0].fd = pipeOpen ? fd : -1
            fds[1].fd = process
            fds[0].revents = 0
            fds[1].revents = 0
            let ready = poll(&fds, 2, 100)
            if ready < 0 { if errno == EINTR { continue } else { break } }
            if fds[1].revents != 0 { processEnded() }
            if pipeOpen, fds[0].revents != 0 {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
                if count < 0, errno == EINTR { continue }
                if count > 0 {
                    buffer.withUnsafeBytes { raw in sink(UnsafeRawBufferPointer(rebasing: raw[0..<count])) }
                } else {
                    pipeOpen = false  // every writer has closed the pipe
                }
            }
        }
        close(fd)
        processEnded()  // stopped early: nobody waits any longer
        outputEnd.open()
    }

    private func processEnded() {
        state.withLock { state in
            if state.process >= 0 { close(state.process) }
            state.process = -1
        }
        processEnd.open()
    }

    /// Waits until the watched process has ended (it is not reaped: the process library reaps
    /// it afterwards).
    func exited() async { await processEnd.wait() }

    /// Waits until the pipe is drained. A process that escaped the group (its own session) may
    /// hold the pipe open: after `patience` the pump stops anyway.
    func finish(patience: Duration) async {
        state.withLock { $0.stopAt = .now + patience }
        await outputEnd.wait()
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
