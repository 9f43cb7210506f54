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

    @Test("on SQLite the lease never expires: no other daemon can take the runs over, so a slow daemon keeps its attempts")
    func sqliteLease() {
        let clock = ManualClock()
        let lease = Lease(duration: .seconds(5), clock: clock, expires: false)
        clock.advance(by: .seconds(60))
        #expect(lease.isTrusted && lease.remaining > .zero)
    }
}
