import BelfryDaemon
import BelfryTesting
import Testing

@Suite("Lease trust")
struct LeaseTests {
    @Test("a lease is trusted until lease − 1 s after its last renewal on the monotonic clock, a freeze included")
    func trust() {
        let clock = ManualClock()
        let lease = Lease(duration: .seconds(5), clock: clock)
        #expect(lease.isTrusted && lease.remaining == .seconds(4))
        clock.advance(by: .milliseconds(3_999))
        #expect(lease.isTrusted)
        clock.advance(by: .milliseconds(1))
        #expect(!lease.isTrusted, "at lease − 1 s the daemon stops trusting it: the database may expire it a second later")
        lease.markRenewed()
        #expect(lease.remaining == .seconds(4))
        clock.advance(by: .seconds(12))  // a SIGSTOP longer than the lease
        #expect(!lease.isTrusted && lease.remaining == .seconds(-8))
    }
}
