@testable import BelfryExecutor
import BelfryStore
import BelfryTesting
import Foundation
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
}
