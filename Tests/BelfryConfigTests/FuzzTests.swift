import BelfryTesting
import Testing

/// Seeded random mutations, the same every run; `Fuzz/` runs libFuzzer on the same checks for
/// millions of inputs.
@Suite("Fuzzing, seeded")
struct DefinitionFuzzTests {
    static let seeds = [
        """
        environment:
          name: ops
          env: { REGION: eu }
          queue: batch
        queues: { batch: { concurrency: 2 } }
        tasks:
          - name: backup
            command: ["/usr/bin/backup", "--target", "{{target}}"]
            inputs: { target: { type: string, required: true } }
            retries: { count: 3, backoff: { initial: 10s, multiplier: 2, max: 5m, jitter: 0.1 } }
            timeout: { max_runtime: 1h, max_queued_time: 10m }
            overlap: forbid
            triggers:
              - { name: nightly, cron: "30 2 * * *", timezone: America/New_York, inputs: { target: db } }
              - { name: rate, every: 90m, start_time: "2026-01-01T00:00:00Z", inputs: { target: files } }
        """,
        """
        tasks:
          - name: report
            command: { shell: 'df -h > /tmp/report' }
            circuit_breaker: { failure_threshold: 3, cooldown: 10m }
            fallbacks: [["/bin/true"]]
            on_failure: ["/bin/echo", "failed"]
            triggers: [hourly, daily, { name: t, cron: "*/5 * * * *", catch_up: all, starting_deadline: 2m, dst: { skipped: shift, repeated: twice } }]
        """,
        "tasks:\n  - { name: x, command: [\"/bin/true\"], triggers: [{ name: m, interval_minutes: 5 }] }\n",
    ]

    @Test("5,000 mutated definition files: loaded or rejected with positioned diagnostics, never a crash")
    func definitionFiles() {
        var mutator = FuzzChecks.Mutator(seed: 20261123, seeds: Self.seeds)
        var failures: [String] = []
        for _ in 0..<5_000 {
            if let failure = FuzzChecks.definitions(mutator.next()) { failures.append(failure) }
        }
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }
}
