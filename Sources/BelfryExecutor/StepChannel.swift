import BelfryStore
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// Where `belfry step` inside a job keeps and finds its results: the store itself, or the
/// process that launched the job (through a `StepChannel`).
public protocol StepBook: Sendable {
    func stored(_ name: String) async throws -> StepRecord?
    func record(_ name: String, exitCode: Int32, stdout: Data) async throws
}

/// Steps written straight to a store the job can open itself.
public struct StoreStepBook: StepBook {
    let store: any Store
    let run: Int64

    public init(store: any Store, run: Int64) { (self.store, self.run) = (store, run) }

    public func stored(_ name: String) async throws -> StepRecord? { try await store.step(run: run, name: name) }

    public func record(_ name: String, exitCode: Int32, stdout: Data) async throws {
        try await store.recordStep(run: run, name: name, exitCode: exitCode, stdout: stdout, at: Date())
    }
}

/// The launching process's side of `belfry step`: a Unix socket (mode 0600, in the state
/// directory) through which a job reads and records its steps, so that no job needs the
/// database — nor, on PostgreSQL, its password. Each attempt gets a token of its own
/// (`BELFRY_STEP_TOKEN`), good for its run only and only while the attempt lasts; the writes are
/// made under the term the attempt started in, so a fenced node's leftover job records nothing.
public final class StepChannel: Sendable {
    /// The socket's path (`BELFRY_STEP_SOCKET`).
    public let path: String
    private let store: any Store
    private let grants = Mutex<[String: Grant]>([:])
    private let server: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>

    private struct Grant {
        var run: Int64
        var term: Int?
    }

    /// The largest request read: a step's stored stdout, base64 inside JSON, and some.
    static let maxRequestBytes = Step.maxStoredBytes / 3 * 4 + 65536

    /// Listens at `DIRECTORY/step-PID.sock` (the directory of attempt logs, created 0700 when
    /// missing). Serve with `run()`.
    public static func open(directory: String, store: any Store) async throws -> StepChannel {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let path = (directory as NSString).appendingPathComponent("step-\(getpid()).sock")
        guard path.utf8.count < 108 else {
            throw StepChannelError(description: "the step socket's path is longer than a Unix socket allows (107 bytes): \(path)")
        }
        // No moment when another user could connect: the socket is bound inside a directory of
        // its own (0700), made 0600, then moved into place. (Not with umask: it is the whole
        // process's, and a job or file made meanwhile on another thread would get it.) The
        // path it is bound at, `DIRECTORY/.XXXXXX/s`, is shorter than the final one.
        var template = Array(((directory as NSString).appendingPathComponent(".XXXXXX")).utf8CString)
        guard let made = mkdtemp(&template) else {
            throw StepChannelError(description: "cannot create a directory in \(directory): \(String(cString: strerror(errno)))")
        }
        let privateDirectory = String(cString: made)
        defer { rmdir(privateDirectory) }
        let bound = privateDirectory + "/s"
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .bind(unixDomainSocketPath: bound) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        guard chmod(bound, 0o600) == 0, rename(bound, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(bound)
            try? await server.channel.close()
            throw StepChannelError(description: "cannot put the step socket at \(path): \(reason)")
        }
        return StepChannel(path: path, store: store, server: server)
    }

    private init(path: String, store: any Store, server: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>) {
        (self.path, self.store, self.server) = (path, store, server)
    }

    /// Serves connections until cancelled; then removes the socket file.
    public func run() async {
        defer { unlink(path) }
        try? await withTaskCancellationHandler {
            try await server.executeThenClose { connections in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in connections {
                        group.addTask { await self.serve(connection) }
                    }
                }
            }
        } onCancel: {
            server.channel.close(promise: nil)
        }
    }

    /// A token for one attempt of `run`, to give the attempt in its environment.
    func grant(run: Int64) -> String {
        // 256 random bits as 64 hex digits (`String(format:)` four times was most of a grant's cost).
        var random = SystemRandomNumberGenerator()
        let token = String(unsafeUninitializedCapacity: 64) { buffer in
            let digits = Array("0123456789abcdef".utf8)
            for word in 0..<4 {
                let value = random.next() as UInt64
                for nibble in 0..<16 { buffer[word * 16 + nibble] = digits[Int(value >> UInt64(60 - 4 * nibble) & 0xf)] }
            }
            return 64
        }
        let grant = Grant(run: run, term: StoreTerm.current)
        grants.withLock { $0[token] = grant }
        return token
    }

    func revoke(_ token: String) {
        _ = grants.withLock { $0.removeValue(forKey: token) }
    }

    private func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        // The reply is written through the channel itself: its future completes once the bytes
        // are out, where the outbound writer's returns once they are queued (and closing the
        // connection then could cut a large reply short).
        let channel = connection.channel
        try? await connection.executeThenClose { inbound, _ in
            var request = ByteBuffer()
            for try await chunk in inbound {
                guard request.readableBytes + chunk.readableBytes <= Self.maxRequestBytes else {
                    return try await channel.writeAndFlush(Self.encode(StepReply(error: "the request is too large")))
                }
                var chunk = chunk
                request.writeBuffer(&chunk)
            }
            let reply = await answer(Data(request.readableBytesView))
            try await channel.writeAndFlush(Self.encode(reply))
        }
    }

    private func answer(_ bytes: Data) async -> StepReply {
        guard let request = try? JSONDecoder().decode(StepRequest.self, from: bytes) else {
            return StepReply(error: "not a step request")
        }
        guard let grant = grants.withLock({ $0[request.token] }) else {
            return StepReply(error: "the step token is not valid (it lasts while its attempt runs)")
        }
        do {
            return try await StoreTerm.$current.withValue(grant.term) {
                if let recorded = request.record {
                    try await store.recordStep(run: grant.run, name: request.name, exitCode: recorded.exitCode, stdout: recorded.stdout, at: Date())
                    return StepReply()
                }
                let stored = try await store.step(run: grant.run, name: request.name)
                return StepReply(stored: stored.map { StepResult(exitCode: $0.exitCode, stdout: $0.stdout) })
            }
        } catch {
            return StepReply(error: "\(error)")
        }
    }

    private static func encode(_ reply: StepReply) -> ByteBuffer {
        ByteBuffer(bytes: (try? JSONEncoder().encode(reply)) ?? Data(#"{"error":"unencodable reply"}"#.utf8))
    }
}

public struct StepChannelError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// A job's end of a `StepChannel`: one connection per question.
public struct StepChannelClient: StepBook {
    let path: String
    let token: String

    public init(path: String, token: String) { (self.path, self.token) = (path, token) }

    public func stored(_ name: String) async throws -> StepRecord? {
        let reply = try exchange(StepRequest(token: token, name: name, record: nil))
        return reply.stored.map { StepRecord(name: name, exitCode: $0.exitCode, stdout: $0.stdout, finishedAt: Date()) }
    }

    public func record(_ name: String, exitCode: Int32, stdout: Data) async throws {
        _ = try exchange(StepRequest(token: token, name: name, record: StepResult(exitCode: exitCode, stdout: stdout)))
    }

    /// Sends the request, half-closes, reads the reply to its end.
    private func exchange(_ request: StepRequest) throws -> StepReply {
        func failure(_ what: String) -> StepChannelError {
            StepChannelError(description: "the step socket \(path): \(what): \(String(cString: strerror(errno)))")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw failure("socket") }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.prefix(raw.count - 1).enumerated() { raw[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { throw failure("cannot connect (has the daemon that started this run stopped?)") }
        let body = try JSONEncoder().encode(request)
        try body.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0, errno == EINTR { continue }
                guard written > 0 else { throw failure("write") }
                offset += written
            }
        }
        shutdown(fd, Int32(SHUT_WR))
        var reply = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw failure("read") }
            if count == 0 { break }
            reply.append(contentsOf: buffer[0..<count])
        }
        guard let decoded = try? JSONDecoder().decode(StepReply.self, from: reply) else {
            throw StepChannelError(description: "the step socket \(path) gave no answer: \(String(decoding: reply.prefix(200), as: UTF8.self))")
        }
        if let error = decoded.error { throw StepChannelError(description: error) }
        return decoded
    }
}

struct StepResult: Codable {
    var exitCode: Int32
    var stdout: Data
}

struct StepRequest: Codable {
    var token: String
    var name: String
    /// Present: record this result. Absent: the stored result, if any.
    var record: StepResult?
}

struct StepReply: Codable {
    var stored: StepResult?
    var error: String?
}
