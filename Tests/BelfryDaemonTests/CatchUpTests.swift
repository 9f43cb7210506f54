import BelfryConfig
@testable import BelfryDaemon
import BelfrySchedule
import BelfryStore
import Testing

@Suite("Catch-up decisions")
struct CatchUpTests {
    static let now = Instant(secondsSinceEpoch: 10_000)
    /// Slots every 600 s up to now: 4000, 4600, ..., 10000 (the last one on time).
    static let due = stride(from: 4000, through: 10_000, by: 600).map { Instant(secondsSinceEpoch: Int64($0)) }

    static func decide(_ mode: CatchUpPolicy.Mode, limit: Int = 100, deadline: Int64? = nil, due: [Instant] = due) -> [String] {
        var policy = CatchUpPolicy()
        policy.mode = mode
        policy.limit = limit
        return CatchUp(policy: policy, startingDeadlineMilliseconds: deadline.map { $0 * 1000 }).decide(due, now: now).map { _, outcome in
            switch outcome {
            case .run(let origin): origin == .scheduled ? "run" : "catch-up"
            case .notRun(let state, _): state.rawValue
            }
        }
    }

    @Test("an on-time slot runs; missed ones follow the policy")
    func policies() {
        #expect(Self.decide(.none) == Array(repeating: "missed", count: 10) + ["run"])
        #expect(Self.decide(.latest) == Array(repeating: "missed", count: 10) + ["run"])
        #expect(Self.decide(.all) == Array(repeating: "catch-up", count: 10) + ["run"])
        #expect(Self.decide(.all, limit: 4) == Array(repeating: "missed", count: 7) + ["catch-up", "catch-up", "catch-up", "run"])
    }

    @Test("catch_up all: the limit counts every run of the wake, each on-time slot included")
    func limitCountsOnTimeRuns() {
        // Slots every 20 s: 9940, 9960, 9980 and 10000 are on time, the 12 before them missed.
        let fast = stride(from: 9700, through: 10_000, by: 20).map { Instant(secondsSinceEpoch: Int64($0)) }
        #expect(Self.decide(.all, limit: 6, due: fast) == Array(repeating: "missed", count: 10) + ["catch-up", "catch-up", "run", "run", "run", "run"])
        #expect(Self.decide(.all, limit: 3, due: fast) == Array(repeating: "missed", count: 12) + ["run", "run", "run", "run"])
    }

    @Test("latest runs the most recent missed slot when none is on time")
    func latestWithoutOnTime() {
        let missedOnly = Array(Self.due.dropLast())
        #expect(Self.decide(.latest, due: missedOnly) == Array(repeating: "missed", count: 9) + ["catch-up"])
        #expect(Self.decide(.none, due: missedOnly) == Array(repeating: "missed", count: 10))
    }

    @Test("starting_deadline: missed slots older than it are not run, whatever the policy")
    func deadline() {
        // Lateness of the slots: 6000, 5400, ..., 600, 0. A deadline of 1500 s keeps 1200 and 600.
        #expect(Self.decide(.all, deadline: 1500) == Array(repeating: "missed", count: 8) + ["catch-up", "catch-up", "run"])
        // A deadline shorter than the on-time window also bounds what counts as on time.
        #expect(Self.decide(.latest, deadline: 30, due: [Instant(secondsSinceEpoch: 9_950)]) == ["missed"])
    }
}
