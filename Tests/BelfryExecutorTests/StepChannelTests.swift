@testable import BelfryExecutor
import BelfryStore
import BelfryTesting
import Foundation
import Synchronization
import Testing

@Suite("the step socket")
struct StepChannelTests {
    @Test("a token reads and records its own run's steps only, and only until it is revoked")
    func tokens() async throws {
        let harness = try Harness()
        let store = harness.store
        let first = try store.createRun(task: "t.job", trigger: nil, slot: nil, origin: .manual, inputs: nil, at: Date())
        let second = try store.createRun(task: "t.job", trigger: nil, slot: nil, origin: .manual, inputs: nil, at: Date())
        let channel = try await StepChannel.open(directory: harness.directory.path + "/logs", store: store)
        let serving = Task { await channel.run() }
        defer { serving.cancel() }
        var status = stat()
        #expect(stat(channel.path, &status) == 0 && status.st_mode & 0o777 == 0o600, "only the daemon's own user may connect")

        let token = channel.grant(run: first)
        #expect(token.utf8.count == 64 && token.utf8.allSatisfy { Array("0123456789abcdef".utf8).contains($0) }, "256 bits in hex: \(token)")
        #expect(Set((0..<100).map { _ in channel.grant(run: second) }).count == 100)
        let client = StepChannelClient(path: channel.path, token: token)
        #expect(try await client.stored("fetch") == nil)
        let big = Data((0..<200_000).map { UInt8($0 % 251) })
        try await client.record("fetch", exitCode: 0, stdout: big)
        #expect(try await client.stored("fetch")?.stdout == big)
        #expect(try store.step(run: first, name: "fetch")?.stdout == big, "recorded in the store, under the token's run")
        #expect(try store.step(run: second, name: "fetch") == nil)

        let forged = StepChannelClient(path: channel.path, token: String(repeating: "0", count: 64))
        await #expect(throws: StepChannelError.self) { try await forged.stored("fetch") }
        channel.revoke(token)
        await #expect(throws: StepChannelError.self) { try await client.record("late", exitCode: 0, stdout: Data()) }
        #expect(try store.step(run: first, name: "late") == nil)
    }

    @Test("opening the socket leaves the process's umask alone: a job or file made meanwhile on another thread is not made 0600")
    func umaskUntouched() async throws {
        let harness = try Harness()
        // The process's umask, read without setting it, over and over while sockets are opened.
        @Sendable func currentMask() -> String? {
            let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
            return status.split(separator: "\n").first { $0.hasPrefix("Umask:") }.map { String($0.dropFirst(6)).trimmingCharacters(in: .whitespaces) }
        }
        let before = try #require(currentMask())
        let seen = Mutex<Set<String>>([])
        let done = Atomic<Bool>(false)
        let watcher = Thread {
            while !done.load(ordering: .relaxed) {
                if let mask = currentMask() { seen.withLock { _ = $0.insert(mask) } }
            }
        }
        watcher.start()
        for index in 0..<20 {
            let channel = try await StepChannel.open(directory: harness.directory.path + "/logs-\(index)", store: harness.store)
            var status = stat()
            #expect(stat(channel.path, &status) == 0 && status.st_mode & 0o777 == 0o600)
            let serving = Task { await channel.run() }
            serving.cancel()
            await serving.value
        }
        done.store(true, ordering: .relaxed)
        #expect(seen.withLock { $0 } == [before])
    }
}
