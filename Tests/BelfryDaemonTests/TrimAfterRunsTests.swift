@testable import BelfryDaemon
import Testing

@Suite("Memory trim after runs")
struct TrimAfterRunsTests {
    @Test("due once runs have ended and none runs, a burst between two beats included; not again until more end")
    func due() {
        var trims = TrimAfterRuns()
        // (running, finished so far) at each beat.
        let beats = [
            (0, 0),  // nothing ran yet
            (0, 1000),  // a burst of 1,000 runs started and ended between two beats
            (0, 1000),  // nothing ended since
            (12, 1500),  // a burst still running
            (0, 2000),  // ... and over
            (0, 2000),
        ]
        #expect(beats.map { trims.isDue(running: $0.0, finished: $0.1) } == [false, true, false, false, true, false])
    }
}
