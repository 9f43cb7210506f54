import Foundation

extension BelfryDatabase {
    /// One daemon per SQLite database: the lock file `PATH.daemon.lock`, held (with the
    /// holder's pid in it) for the life of the process, keeps a second one off.
    public func join(name: String, lease: Duration) throws {
        try daemonLock.withLock { held in
            guard held == nil else { return }
            let lockPath = path + ".daemon.lock"
            let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw StoreError.cannotOpen(path: lockPath, reason: String(cString: strerror(errno))) }
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                let holder = (try? String(contentsOfFile: lockPath, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
                close(fd)
                throw StoreError.daemonRunning(location: path, holder: "pid \(holder)")
            }
            ftruncate(fd, 0)
            let pid = "\(getpid())\n"
            _ = pid.withCString { write(fd, $0, strlen($0)) }
            held = fd
        }
    }

    /// One daemon: its own queues decide (`QueueGate`).
    public func enterQueue(_ queue: String, run: Int64, limit: Int) -> Bool { true }

    public func leaveQueue(run: Int64) {}

    /// One daemon, one membership.
    public var term: Int { 0 }

    /// The lock file never expires.
    public func renewLease() -> NodeShare? { .alone }

    /// No other daemon can have run on this database while this one holds it: the runs a
    /// previous daemon left are `interruptedRuns`' at start.
    public func takeOverLostNodes(at: Date) -> (runs: [InterruptedRun], nodes: [String]) { ([], []) }

    public func unlaunchedRuns() -> [InterruptedRun] { [] }

    /// One daemon: it cancels its own runs.
    public func requestCancel(run id: Int64) -> Bool { false }

    /// The lock file is released when the process exits.
    public func leave() {}

    /// One daemon per SQLite database: no nodes.
    public func nodes() -> [NodeRecord] { [] }

    /// The one daemon replaces its own runs itself.
    public func cancelRequests() -> [Int64] { [] }
}
