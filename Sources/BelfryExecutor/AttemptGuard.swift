import Foundation

/// The attempt guard: a small process of its own beside a daemon that shares its store with
/// others. The daemon tells it, four times a second, how much longer it may trust its lease.
/// When that time runs out with no word from the daemon — the daemon is frozen (SIGSTOP, a
/// paused VM), cut off from the database or killed — the guard takes down the process groups of
/// the daemon's attempts (SIGTERM, SIGKILL a second later): a frozen daemon cannot do it itself,
/// and another node resumes those runs once the lease has been expired for their kill_grace.
public enum AttemptGuard {
    /// The guard's loop, in its own process: messages come on `input` (`trust MS`, `stop`).
    /// Returns when the daemon said `stop`, or when it is gone and its attempts were taken down.
    public static func run(daemon: Int32, input: Int32) {
        // Half a second after the daemon itself would fence: a daemon that is alive takes its
        // attempts down first and records them interrupted. SIGKILL follows a second later, still
        // before a survivor resumes them (lease + kill_grace after the last renewal, the trust
        // ending at lease − 1 s).
        let margin = Duration.milliseconds(500)
        var deadline: ContinuousClock.Instant?
        var inputOpen = true
        var known = Set<Int32>()
        var buffer = [UInt8]()
        while true {
            let now = ContinuousClock.now
            var timeout: Int32 = 250
            if let deadline {
                let left = now.duration(to: deadline)
                timeout = min(timeout, Int32(max(0, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)))
            }
            if inputOpen {
                var descriptor = pollfd(fd: input, events: Int16(POLLIN), revents: 0)
                if poll(&descriptor, 1, timeout) > 0 {
                    var chunk = [UInt8](repeating: 0, count: 4096)
                    let count = read(input, &chunk, chunk.count)
                    if count <= 0 {
                        inputOpen = false  // the daemon is gone: its last word stands
                    } else {
                        buffer += chunk[0..<count]
                        while let newline = buffer.firstIndex(of: 10) {
                            let line = String(decoding: buffer[..<newline], as: UTF8.self)
                            buffer.removeSubrange(...newline)
                            if line == "stop" { return }
                            if line.hasPrefix("trust "), let milliseconds = Int64(line.dropFirst(6)) {
                                deadline = ContinuousClock.now + .milliseconds(milliseconds) + margin
                            }
                        }
                    }
                }
            } else {
                _ = poll(nil, 0, timeout)
            }
            // Every pass (at least four a second): a daemon killed just after starting an
            // attempt leaves it reparented, no longer to be found as its child.
            known = known.filter { kill(-$0, 0) == 0 }.union(attempts(of: daemon))
            if let current = deadline, ContinuousClock.now >= current {
                takeDown(known.union(attempts(of: daemon)))
                known = []
                deadline = nil
                if !inputOpen { return }
            } else if !inputOpen, deadline == nil {
                return
            }
        }
    }

    /// The daemon's attempts: its children that lead a session of their own (every attempt
    /// does), zombies left out.
    static func attempts(of daemon: Int32) -> Set<Int32> {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var found = Set<Int32>()
        for entry in entries where entry.first?.isNumber == true {
            guard let pid = Int32(entry), let process = ProcessStatus(pid: entry) else { continue }
            if process.parent == daemon, process.session == pid, pid != getpid(), !process.isZombie { found.insert(pid) }
        }
        return found
    }

    private static func takeDown(_ groups: Set<Int32>) {
        let alive = groups.filter { kill(-$0, SIGTERM) == 0 }
        guard !alive.isEmpty else { return }
        _ = poll(nil, 0, 1000)
        for group in alive { kill(-group, SIGKILL) }
    }
}

/// The daemon's end of its attempt guard: starts it, and keeps it told.
public final class AttemptGuardChannel: Sendable {
    private let socket: Int32
    public let pid: Int32

    /// Starts `executable guard-attempts --daemon PID` (this program's hidden command) with one
    /// end of a socket pair as its standard input. Nil when it cannot be started.
    public init?(executable: String, arguments: [String]) {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0 else { return nil }
        _ = fcntl(pair[0], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pair[1], 0)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A session of its own: a signal to the daemon's group (Ctrl-Z, Ctrl-C) does not reach it.
        posix_spawnattr_setflags(&attributes, 0x80)  // POSIX_SPAWN_SETSID (glibc 2.26), which Glibc does not export to Swift
        var child: pid_t = 0
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let status = posix_spawn(&child, executable, &actions, &attributes, argv, environ)
        close(pair[1])
        guard status == 0 else {
            close(pair[0])
            return nil
        }
        (socket, pid) = (pair[0], child)
    }

    /// The daemon may trust its lease for `remaining` more.
    public func trust(_ remaining: Duration) {
        let milliseconds = max(0, remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000)
        say("trust \(milliseconds)\n")
    }

    /// The daemon stops and has taken its attempts down itself: the guard leaves.
    public func stop() { say("stop\n") }

    private func say(_ line: String) {
        _ = line.withCString { send(socket, $0, strlen($0), Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
    }
}
