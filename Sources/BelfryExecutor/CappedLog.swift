import Foundation

/// An attempt's output on its way to its log file, capped at `limit` bytes: past the cap the file
/// keeps the first half and the last half of the output with a marker between (the error is
/// usually at the end). Memory stays bounded by half the cap, however much the job prints.
final class CappedLog: @unchecked Sendable {
    /// How much of the end of the output the database keeps (SPEC §4).
    static let tailBytes = 4096

    private let path: String
    /// Open from `open()` on; until then nothing is written (nothing is appended either).
    private var handle: FileHandle?
    private let headLimit: Int
    private var headWritten = 0
    private var total = 0
    /// The end of the output past the head: a ring of at most `limit - headLimit` bytes.
    private var tail: Ring
    private var recent = Ring(capacity: tailBytes)
    private let lock = NSLock()

    /// Creates the file, empty (mode 0600), and its directory (0700) when that is missing: the
    /// first attempt of a thousand runs makes their directory (`AttemptLogs`), and one pruned
    /// empty meanwhile is made again. The file is not kept open: `open()` opens it once the
    /// attempt's process has started. A descriptor open while a burst of processes start is
    /// copied into each and closed there again (every process starts with a copy of the daemon's
    /// descriptor table).
    init(path: String, limit: Int) throws {
        self.path = path
        let fd = try Self.openFile(path, flags: O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, createDirectory: true)
        close(fd)
        headLimit = max(limit / 2, 1)
        tail = Ring(capacity: max(limit - headLimit, 1))
    }

    /// Opens the file made by `init` for the output.
    func open() throws {
        let fd = try Self.openFile(path, flags: O_WRONLY | O_CREAT | O_CLOEXEC, createDirectory: false)
        lock.withLock { handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true) }
    }

    private static func openFile(_ path: String, flags: Int32, createDirectory: Bool) throws -> Int32 {
        var fd = Foundation.open(path, flags, 0o600)
        if fd < 0, errno == ENOENT, createDirectory {
            try? FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            fd = Foundation.open(path, flags, 0o600)
        }
        guard fd >= 0 else { throw Unwritable(path: path, reason: String(cString: strerror(errno))) }
        return fd
    }

    struct Unwritable: Error, CustomStringConvertible {
        var path: String
        var reason: String
        var description: String { "cannot write the log \(path): \(reason)" }
    }

    /// Appends output as it arrives.
    func append(_ bytes: UnsafeRawBufferPointer) {
        lock.withLock {
            total += bytes.count
            recent.append(bytes)
            var rest = UnsafeRawBufferPointer(rebasing: bytes[...])
            if headWritten < headLimit {
                let take = min(headLimit - headWritten, rest.count)
                handle?.write(Data(rest.prefix(take)))
                headWritten += take
                rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(take))
            }
            tail.append(rest)
        }
    }

    /// Writes the end of the output (with a marker where bytes were left out), closes the file,
    /// and returns the last 4 KiB of the output.
    func finish() -> Data {
        lock.withLock {
            let end = tail.contents()
            let omitted = total - headWritten - end.count
            if omitted > 0 {
                handle?.write(Data("\n[belfry: \(omitted) bytes of output left out here: the log keeps the first \(headWritten) and the last \(end.count)]\n".utf8))
            }
            handle?.write(Data(end))
            try? handle?.close()
            handle = nil
            return Data(recent.contents())
        }
    }
}

/// The last `capacity` bytes appended.
struct Ring {
    private var storage: [UInt8] = []
    private var start = 0
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        var bytes = bytes[...]
        if bytes.count >= capacity {
            storage = Array(bytes.suffix(capacity))
            start = 0
            return
        }
        let room = capacity - storage.count
        if room > 0 {
            storage.append(contentsOf: bytes.prefix(room))
            bytes = bytes.dropFirst(min(room, bytes.count))
        }
        // Overwrite the oldest bytes, in at most two contiguous copies.
        while !bytes.isEmpty {
            let count = min(bytes.count, capacity - start)
            storage.withUnsafeMutableBytes { target in
                UnsafeMutableRawBufferPointer(rebasing: target[start..<start + count]).copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes.prefix(count)))
            }
            start = (start + count) % capacity
            bytes = bytes.dropFirst(count)
        }
    }

    func contents() -> [UInt8] {
        Array(storage[start...] + storage[..<start])
    }
}
