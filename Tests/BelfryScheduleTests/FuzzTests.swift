import BelfryTesting
import Testing

/// Seeded random mutations, the same every run; `Fuzz/` runs libFuzzer on the same checks for
/// millions of inputs.
@Suite("Fuzzing, seeded")
struct CronFuzzTests {
    @Test("100,000 mutated cron expressions: an error or slots that keep their promises, never a crash")
    func cronExpressions() {
        var mutator = FuzzChecks.Mutator(seed: 20261123, seeds: [
            "*/15 * * * *", "30 2 * * *", "0 9 * * 1-5", "*/5 9-17 * * 1-5", "0 0 L * *", "0 0 LW * *", "0 12 * * MON#1",
            "45 23 * * 5L", "*/10 * * * * *", "0 0 29 2 *", "@hourly", "@yearly", "0 0 1,15 JAN-MAR ?", "59 23 31 12 SUN-SAT",
            "0 0 15W * *", "0 0 L-3 * *",
        ])
        var failures: [String] = []
        for _ in 0..<100_000 {
            if let failure = FuzzChecks.cron(mutator.next()) { failures.append(failure) }
        }
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }
}
