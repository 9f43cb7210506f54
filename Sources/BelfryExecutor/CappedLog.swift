import Foundation

/// An attempt's output on its way to its log file, capped at `limit` bytes: past the cap the file
/// keeps the first half and the last half of the output with a marker between (the error is
/// usually at the end). Memory stays bounded by half the cap, however much the job prints.
///
/// The file is made at the first byte of output: an attempt that prints nothing leaves none
/// (most scheduled jobs are silent when all is well; a file each is an inode each, and making
/// them was an eighth of the daemon's CPU per run in a burst of due runs).
final class CappedLog: @unchecked Sendable {
    /// How much of the end of the output the database keeps (SPEC §4).
    static let tailBytes = 4096

    private let path: String
    /// Made at the first output; nil before, and after a failure to make it (`unwritable`).
    private var handle: FileHandle?
    private var unwritable: Unwritable?
    private let headLimit: Int
    private var headWritten = 0
    private var total = 0
    /// The end of the output past the head: a ring of at most `limit - headLimit` bytes.
    private var tail: Ring
    private var recent = Ring(capacity: tailBytes)
    private let lock = NSLock()

    /// Makes sure the file can be made: its directory exists (made, 0700, when missing: the first
    /// attempt of a thousand runs makes their directory, `AttemptLogs`, and one pruned empty
    /// meanwhile is made again) and may be written. Throws `Unwritable` otherwise: the attempt
    /// does not start without a place for its output.
    init(path: String, limit: Int) throws {
        self.path = path
        let directory = (path as NSString).deletingLastPathComponent
        if access(directory, W_OK) != 0 {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            guard access(directory, W_OK) == 0 else { throw Unwritable(path: path, reason: String(cString: strerror(errno))) }
        }
        headLimit = max(limit / 2, 1)
        tail = Ring(capacity: max(limit - headLimit, 1))
    }

    /// The file, made (mode 0600) at the first call; nil if it cannot be: the output then goes
    /// on into the database's tail, which ends saying so.
    private func file() -> FileHandle? {
        if handle == nil, unwritable == nil {
            let fd = Foundation.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            if fd >= 0 {
                handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
            } else {
                unwritable = Unwritable(path: path, reason: String(cString: strerror(errno)))
            }
        }
        return handle
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
                file()?.write(Data(rest.prefix(take)))
                headWritten += take
                rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(take))
            }
            tail.append(rest)
        }
    }

    /// Writes the end of the output (with a marker where bytes were left out), closes the file,
    /// and returns the last 4 KiB of the output (ending with why there is no file, when it could
    /// not be made).
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
            if let unwritable { Data("\n[belfry: \(unwritable)]\n".utf8).withUnsafeBytes { recent.append($0) } }
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
