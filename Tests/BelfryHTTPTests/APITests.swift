import BelfryConfig
@testable import BelfryHTTP
import BelfryListings
import BelfryStore
import BelfryTesting
import BelfrySchedule
import Foundation
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing

final class Counter: Sendable {
    private let value = Mutex(0)
    func increment() { value.withLock { $0 += 1 } }
    var count: Int { value.withLock { $0 } }
}

final class Recorder: Sendable {
    private let value = Mutex<[String]>([])
    func record(_ item: String) { value.withLock { $0.append(item) } }
    var items: [String] { value.withLock { $0 } }
}

final class Flag: Sendable {
    private let value = Mutex(true)
    func set(_ new: Bool) { value.withLock { $0 = new } }
    var isSet: Bool { value.withLock { $0 } }
}

/// A store with a task of two triggers and a finished run, behind the API's routes.
struct APIHarness {
    let directory: TemporaryDirectory
    let store: BelfryDatabase
    let changes = Counter()
    let healthy = Flag()
    let started = Recorder()
    let cancelled = Recorder()
    static let admin = "admin-token-0123456789abcdef"
    static let reader = "read-token-0123456789abcdef"

    init() async throws {
        directory = try TemporaryDirectory()
        store = try BelfryDatabase(path: directory.path + "/belfry.sqlite")
        let definitions = try DefinitionLoader.load(files: [("ops.yaml", Array("""
            tasks:
              - name: job
                command: ["/bin/echo", "hi"]
                triggers:
                  - { name: hourly, cron: "0 * * * *", timezone: America/New_York }
                  - { name: rate, every: 10m, auto_activate: false }
            """.utf8))])
        _ = try store.deploy(definitions, owner: "alice", now: Date())
        for k in 0..<3 {
            let id = try store.createRun(task: "ops.job", trigger: nil, slot: nil, origin: .manual, inputs: nil, at: Date())
            let log = directory.path + "/attempt-\(k).log"
            try Data("output \(k)\n".utf8).write(to: URL(fileURLWithPath: log))
            try await store.startAttempt(run: id, number: 1, pid: nil, logPath: log, at: Date())
            try await store.finishAttempt(run: id, number: 1, exitCode: Int32(k), signal: nil, timedOut: false, outputTail: Data("output \(k)\n".utf8), at: Date())
            try await store.finishRun(id, state: k == 0 ? .succeeded : .failed, reason: k == 0 ? nil : "exit code \(k)", exitCode: Int32(k), commandUsed: nil, at: Date())
        }
    }

    var application: some ApplicationProtocol {
        let tokens = HTTPTokens(tokens: [(name: "ops-admin", role: .admin, secret: Self.admin), (name: "viewer", role: .read, secret: Self.reader)])
        let metrics = MetricsExporter(build: [("version", "test")]) { .init(activeTriggers: 2, queues: [:]) }
        metrics.runFinished(task: "ops.job", state: "failed")
        let (changes, healthy) = (self.changes, self.healthy)
        let (store, started, cancelled) = (self.store, self.started, self.cancelled)
        let actions = HTTPServer.Actions(
            runNow: { task, inputs in
                started.record("\(task.fullName) \(inputs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))")
                return try store.createRun(task: task.fullName, trigger: nil, slot: nil, origin: .api, inputs: nil, at: Date())
            },
            cancel: { id in cancelled.record("\(id)"); return true })
        let router = HTTPServer.router(store: store, tokens: tokens, metrics: metrics, health: {
            healthy.isSet ? nil : "the database does not answer"
        }, actions: actions, changed: { changes.increment() })
        return Application(router: router)
    }
}

func bearer(_ token: String) -> HTTPFields { [.authorization: "Bearer \(token)"] }

func json(_ response: TestResponse) throws -> Any { try JSONSerialization.jsonObject(with: Data(buffer: response.body)) }

@Suite("HTTP API")
struct APITests {
    @Test("no token, a wrong token: 401 with a JSON error; a read token reads; a read token cannot change (403)")
    func authentication() async throws {
        let harness = try await APIHarness()
        try await harness.application.test(.router) { client in
            for headers: HTTPFields in [[:], bearer("wrong-token-0123456789abcdef"), [.authorization: "Basic YWxhZGRpbjpvcGVu"]] {
                let response = try await client.execute(uri: "/api/v1/triggers", method: .get, headers: headers)
                #expect(response.status == .unauthorized)
                #expect(response.headers[.wwwAuthenticate] == "Bearer")
                let body = try #require(try json(response) as? [String: String])
                #expect(body["error"] == "unauthorized" && body["detail"]?.isEmpty == false)
            }
            let read = try await client.execute(uri: "/api/v1/triggers", method: .get, headers: bearer(APIHarness.reader))
            #expect(read.status == .ok)
            let change = try await client.execute(uri: "/api/v1/triggers/ops.job/rate/activate", method: .post, headers: bearer(APIHarness.reader))
            #expect(change.status == .forbidden)
            #expect((try json(change) as? [String: String])?["error"] == "forbidden")
        }
        #expect(try harness.store.trigger(task: "ops.job", name: "rate").active == false, "a read token changed nothing")
        #expect(harness.changes.count == 0)
    }

    @Test("triggers: the CLI's fields; show adds the next 10 slots; activate records the token's name; unknown ones are 404")
    func triggers() async throws {
        let harness = try await APIHarness()
        try await harness.application.test(.router) { client in
            let list = try #require(try json(try await client.execute(uri: "/api/v1/triggers", method: .get, headers: bearer(APIHarness.admin))) as? [[String: Any]])
            #expect(list.map { $0["trigger"] as? String } == ["hourly", "rate"])
            #expect(Set(list[0].keys) == ["task", "trigger", "kind", "schedule", "resolved_schedule", "timezone", "active", "next_slot", "last_run", "owner", "updated_by", "updated_at"])
            let limited = try #require(try json(try await client.execute(uri: "/api/v1/triggers?limit=1", method: .get, headers: bearer(APIHarness.admin))) as? [Any])
            #expect(limited.count == 1)

            let show = try #require(try json(try await client.execute(uri: "/api/v1/triggers/ops.job/hourly", method: .get, headers: bearer(APIHarness.admin))) as? [String: Any])
            let upcoming = try #require(show["upcoming"] as? [[String: Any]])
            #expect(upcoming.count == 10)
            #expect(Set(upcoming[0].keys) == ["slot", "local", "abbreviation", "marker", "skipped"])
            #expect(upcoming[0]["slot"] as? String == show["next_slot"] as? String)

            let activated = try await client.execute(uri: "/api/v1/triggers/ops.job/rate/activate", method: .post, headers: bearer(APIHarness.admin))
            #expect(activated.status == .ok)
            let body = try #require(try json(activated) as? [String: Any])
            #expect(body["active"] as? Bool == true && body["updated_by"] as? String == "ops-admin")

            let missing = try await client.execute(uri: "/api/v1/triggers/ops.job/nightly", method: .get, headers: bearer(APIHarness.admin))
            #expect(missing.status == .notFound)
            #expect((try json(missing) as? [String: String])?["error"] == "not_found")
        }
        #expect(try harness.store.trigger(task: "ops.job", name: "rate").active == true)
        #expect(try harness.store.trigger(task: "ops.job", name: "rate").updatedBy == "ops-admin")
        #expect(harness.changes.count == 1, "the daemon is told to read its triggers again")
    }

    @Test("runs: filters, a before cursor, the detail and an attempt's log as text")
    func runs() async throws {
        let harness = try await APIHarness()
        try await harness.application.test(.router) { client in
            // Run now, with inputs; a read token may not; bad bodies are 400s.
            let created = try await client.execute(uri: "/api/v1/tasks/ops.job/runs", method: .post, headers: bearer(APIHarness.admin),
                                                   body: ByteBuffer(string: #"{"inputs": {}}"#))
            #expect(created.status == .accepted)
            #expect((try json(created) as? [String: Int])?["id"] == 4)
            #expect(try await client.execute(uri: "/api/v1/tasks/ops.job/runs", method: .post, headers: bearer(APIHarness.reader)).status == .forbidden)
            for body in ["{", #"{"inputs": {"day": 3}}"#, #"{"inputs": {"day": "mon"}}"#, #"{"input": {}}"#, "[1]"] {
                let response = try await client.execute(uri: "/api/v1/tasks/ops.job/runs", method: .post, headers: bearer(APIHarness.admin),
                                                        body: ByteBuffer(string: body))
                #expect(response.status == .badRequest, "\(body)")
            }
            #expect(try await client.execute(uri: "/api/v1/tasks/ops.nothing/runs", method: .post, headers: bearer(APIHarness.admin)).status == .notFound)
            // Cancel: the queued run 4 is cancelled; a finished one is a 409.
            #expect(try await client.execute(uri: "/api/v1/runs/4/cancel", method: .post, headers: bearer(APIHarness.admin)).status == .accepted)
            #expect(try await client.execute(uri: "/api/v1/runs/1/cancel", method: .post, headers: bearer(APIHarness.admin)).status == .conflict)
            #expect(try await client.execute(uri: "/api/v1/runs/4/cancel", method: .post, headers: bearer(APIHarness.reader)).status == .forbidden)
            _ = try await harness.store.finishRun(4, state: .cancelled, reason: "cancelled", exitCode: nil, commandUsed: nil, at: Date())

            let all = try #require(try json(try await client.execute(uri: "/api/v1/runs", method: .get, headers: bearer(APIHarness.reader))) as? [[String: Any]])
            #expect(all.map { $0["id"] as? Int } == [4, 3, 2, 1])
            #expect(all.first?["origin"] as? String == "api")
            let failed = try #require(try json(try await client.execute(uri: "/api/v1/runs?state=failed&limit=1", method: .get, headers: bearer(APIHarness.reader))) as? [[String: Any]])
            #expect(failed.map { $0["id"] as? Int } == [3])
            let page = try #require(try json(try await client.execute(uri: "/api/v1/runs?before=3", method: .get, headers: bearer(APIHarness.reader))) as? [[String: Any]])
            #expect(page.map { $0["id"] as? Int } == [2, 1])
            let bad = try await client.execute(uri: "/api/v1/runs?state=exploded", method: .get, headers: bearer(APIHarness.reader))
            #expect(bad.status == .badRequest)
            let badLimit = try await client.execute(uri: "/api/v1/runs?limit=-4", method: .get, headers: bearer(APIHarness.reader))
            #expect(badLimit.status == .badRequest)

            let detail = try #require(try json(try await client.execute(uri: "/api/v1/runs/2", method: .get, headers: bearer(APIHarness.reader))) as? [String: Any])
            #expect((detail["attempt_list"] as? [[String: Any]])?.first?["exit_code"] as? Int == 1)
            let log = try await client.execute(uri: "/api/v1/runs/2/log", method: .get, headers: bearer(APIHarness.reader))
            #expect(log.status == .ok && log.headers[.contentType]?.hasPrefix("text/plain") == true)
            #expect(String(buffer: log.body) == "output 1\n")
            #expect(try await client.execute(uri: "/api/v1/runs/2/log?attempt=7", method: .get, headers: bearer(APIHarness.reader)).status == .notFound)
            try FileManager.default.removeItem(atPath: harness.directory.path + "/attempt-0.log")  // run 1 printed "output 0"
            #expect(try await client.execute(uri: "/api/v1/runs/1/log", method: .get, headers: bearer(APIHarness.reader)).status == .notFound)
            let events = try await client.execute(uri: "/api/v1/runs/2/log?follow=1", method: .get, headers: bearer(APIHarness.reader))
            #expect(events.headers[.contentType] == "text/event-stream")
            #expect(String(buffer: events.body) == "data: output 1\n\nevent: end\ndata: failed\n\n")
            #expect(try await client.execute(uri: "/api/v1/runs/99", method: .get, headers: bearer(APIHarness.reader)).status == .notFound)
            #expect(try await client.execute(uri: "/api/v1/runs/../../etc/passwd", method: .get, headers: bearer(APIHarness.reader)).status == .notFound)

            let stats = try #require(try json(try await client.execute(uri: "/api/v1/stats", method: .get, headers: bearer(APIHarness.reader))) as? [[String: Any]])
            #expect(stats.first?["runs"] as? Int == 4)
        }
        #expect(harness.started.items == ["ops.job "])
        #expect(harness.cancelled.items == ["4"])
    }

    @Test("next: the slots of a cron expression or a rate, as belfry next --json prints them; bad input is a 400")
    func next() async throws {
        let harness = try await APIHarness()
        try await harness.application.test(.router) { client in
            let uri = "/api/v1/next?cron=30%202%20*%20*%20*&timezone=America/New_York&after=2026-03-06T12:00:00Z&count=3"
            let api = try await client.execute(uri: uri, method: .get, headers: bearer(APIHarness.reader))
            let cli = try BelfryCommand.run(["next", "30 2 * * *", "--timezone", "America/New_York", "--after", "2026-03-06T12:00:00Z", "--count", "3", "--json"])
            #expect(try json(api) as? NSArray == (try JSONSerialization.jsonObject(with: Data(cli.stdout.utf8)) as? NSArray))
            let rate = try #require(try json(try await client.execute(uri: "/api/v1/next?every=90m&after=2026-01-01T00:00:00Z&count=2&start_time=2026-01-01T00:00:00Z", method: .get, headers: bearer(APIHarness.reader))) as? [[String: Any]])
            #expect(rate.map { $0["slot"] as? String } == ["2026-01-01T01:30:00Z", "2026-01-01T03:00:00Z"])
            // H, placed by the key as belfry next --hash-key places it (the manual's example: minute 4).
            let hashed = try #require(try json(try await client.execute(
                uri: "/api/v1/next?cron=H%203%20*%20*%20*&hash_key=ops.backup%20nightly&after=2027-01-01T00:00:00Z&count=1", method: .get,
                headers: bearer(APIHarness.reader))) as? [[String: Any]])
            #expect(hashed.first?["slot"] as? String == "2027-01-01T03:04:00Z")
            for bad in ["/api/v1/next?cron=61%20*%20*%20*%20*", "/api/v1/next", "/api/v1/next?cron=H%20*%20*%20*%20*", "/api/v1/next?cron=*%20*%20*%20*%20*&timezone=Mars/Olympus", "/api/v1/next?every=0s"] {
                let response = try await client.execute(uri: bad, method: .get, headers: bearer(APIHarness.reader))
                #expect(response.status == .badRequest, "\(bad)")
                #expect((try json(response) as? [String: String])?["error"] == "bad_request")
            }
        }
    }

    @Test("unknown routes are a JSON 404; bodies over 1 MiB a 413; /healthz says 503 with the reason; /metrics is Prometheus text")
    func edges() async throws {
        let harness = try await APIHarness()
        try await harness.application.test(.router) { client in
            let unknown = try await client.execute(uri: "/api/v1/nothing", method: .get, headers: bearer(APIHarness.reader))
            #expect(unknown.status == .notFound)
            #expect((try json(unknown) as? [String: String])?["error"] == "not_found")
            let big = try await client.execute(uri: "/api/v1/triggers/ops.job/rate/activate", method: .post, headers: bearer(APIHarness.admin),
                                               body: ByteBuffer(repeating: 0x41, count: (1 << 20) + 1))
            #expect(big.status == .contentTooLarge)

            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
            harness.healthy.set(false)
            let sick = try await client.execute(uri: "/healthz", method: .get)
            #expect(sick.status == .serviceUnavailable)
            #expect((try json(sick) as? [String: String])?["reason"] == "the database does not answer")

            let metrics = try await client.execute(uri: "/metrics", method: .get)
            let text = String(buffer: metrics.body)
            #expect(metrics.headers[.contentType]?.hasPrefix("text/plain") == true)
            #expect(text.contains("belfry_build_info{version=\"test\"} 1"))
            #expect(text.contains("belfry_triggers{active=\"true\"} 2"))
            #expect(text.contains("belfry_runs_total{task=\"ops.job\",state=\"failed\"} 1"))
        }
    }
}

@Suite("OpenAPI document")
struct OpenAPITests {
    @Test("served without a token; every path and method it names is a route; every route is in it")
    func document() async throws {
        let harness = try await APIHarness()
        try await harness.application.test(.router) { client in
            let response = try await client.execute(uri: "/api/v1/openapi.yaml", method: .get)
            #expect(response.status == .ok)
            let text = String(buffer: response.body)
            #expect(text.hasPrefix("openapi: 3.1.0"))
            var documented: [(method: String, path: String)] = []
            var path: String?
            var inPaths = false
            for line in text.split(separator: "\n").map(String.init) {
                if line == "paths:" { inPaths = true; continue }
                guard inPaths else { continue }
                if line.hasPrefix("  /"), line.hasSuffix(":") { path = String(line.dropFirst(2).dropLast()) }
                for method in ["get", "post"] where line == "    \(method):" { documented.append((method, path!)) }
            }
            let known = [("get", "/triggers"), ("get", "/triggers/{task}/{trigger}"), ("post", "/triggers/{task}/{trigger}/activate"),
                         ("post", "/triggers/{task}/{trigger}/deactivate"), ("post", "/tasks/{task}/runs"), ("get", "/runs"), ("get", "/runs/{id}"),
                         ("get", "/runs/{id}/log"), ("post", "/runs/{id}/cancel"), ("get", "/stats"), ("get", "/next"), ("get", "/openapi.yaml")]
            #expect(documented.map { "\($0.method) \($0.path)" }.sorted() == known.map { "\($0.0) \($0.1)" }.sorted())
            for (method, path) in documented {
                let uri = "/api/v1" + path.replacingOccurrences(of: "{task}", with: "ops.job").replacingOccurrences(of: "{trigger}", with: "rate")
                    .replacingOccurrences(of: "{id}", with: "1") + (path == "/next" ? "?cron=@daily" : "")
                let answer = try await client.execute(uri: uri, method: method == "get" ? .get : .post, headers: bearer(APIHarness.admin))
                #expect(!String(buffer: answer.body).contains("no such route"), "\(method) \(uri)")
                #expect(answer.status.code < 500, "\(method) \(uri)")
            }
        }
    }
}

@Suite("Metrics")
struct MetricsTests {
    @Test("per-trigger series: next slot and last success, label values escaped; missed slots by their reason's first words")
    func perTrigger() async throws {
        let metrics = MetricsExporter(build: [("version", "1")], read: { .init(activeTriggers: 1, queues: [:]) }, perTrigger: {
            [(task: "ops.job", trigger: "hourly", next: Instant(secondsSinceEpoch: 1_800_000_000), lastSuccess: Date(timeIntervalSince1970: 1_799_999_000.5)),
             (task: "ops.odd", trigger: "q\"u\\o\nte", next: nil, lastSuccess: nil)]
        })
        metrics.slotNotRun(task: "ops.job", state: "missed", reason: "catch_up latest: 3 slots behind")
        let text = String(decoding: await metrics.scrape(), as: UTF8.self)
        #expect(text.contains("belfry_trigger_next_slot_timestamp_seconds{task=\"ops.job\",trigger=\"hourly\"} 1800000000\n"))
        #expect(text.contains("belfry_trigger_last_success_timestamp_seconds{task=\"ops.job\",trigger=\"hourly\"} 1799999000.500\n"))
        #expect(!text.contains("ops.odd"), "a trigger without a next slot or a success has no series")
        #expect(MetricsExporter.label("q\"u\\o\nte") == "q\\\"u\\\\o\\nte")
        #expect(text.contains("belfry_slots_missed_total{task=\"ops.job\",reason=\"catch_up latest\"} 1"))
    }

    @Test("instants in listings: RFC 3339 in UTC, milliseconds when there are any, before 1970 too")
    func instants() {
        #expect(Listing.rfc3339(Date(timeIntervalSince1970: 1_700_000_000)) == "2023-11-14T22:13:20Z")
        #expect(Listing.rfc3339(Date(timeIntervalSince1970: 1_700_000_000.5)) == "2023-11-14T22:13:20.500Z")
        #expect(Listing.rfc3339(Date(timeIntervalSince1970: 1_700_000_000.007)) == "2023-11-14T22:13:20.007Z")
        #expect(Listing.rfc3339(Date(timeIntervalSince1970: -0.25)) == "1969-12-31T23:59:59.750Z")
    }

    @Test("past the task budget, runs of further tasks are counted under task=\"_other\"")
    func taskBudget() async throws {
        let metrics = MetricsExporter(build: [("version", "1")], read: { .init(activeTriggers: 3, queues: [:]) }, maxTasks: 2)
        for task in ["a.one", "b.two", "c.three", "d.four", "a.one"] {
            metrics.runFinished(task: task, state: "succeeded")
            metrics.attemptEnded(task: task, outcome: "succeeded")
        }
        let text = String(decoding: await metrics.scrape(), as: UTF8.self)
        for line in ["belfry_runs_total{task=\"a.one\",state=\"succeeded\"} 2", "belfry_runs_total{task=\"b.two\",state=\"succeeded\"} 1",
                     "belfry_runs_total{task=\"_other\",state=\"succeeded\"} 2", "belfry_attempts_total{task=\"_other\",outcome=\"succeeded\"} 2"] {
            #expect(text.contains(line + "\n"), "\(line)")
        }
        #expect(!text.contains("c.three"))
    }

    @Test("every family of the daemon: attempts, histograms, queues, circuits, nodes; promtool finds nothing to say when installed")
    func families() async throws {
        let metrics = MetricsExporter(build: [("version", "1")], read: {
            .init(activeTriggers: 3, queues: ["default": (2, 0), "backups": (1, 4)], nodes: 2, leaseRemaining: .milliseconds(8500))
        }, perTrigger: { [(task: "ops.job", trigger: "hourly", next: Instant(secondsSinceEpoch: 1_800_000_000), lastSuccess: nil)] })
        metrics.attemptEnded(task: "ops.job", outcome: "failed")
        metrics.attemptEnded(task: "ops.job", outcome: "failed")
        metrics.attemptEnded(task: "ops.job", outcome: "succeeded")
        metrics.runFinished(task: "ops.job", state: "succeeded")
        metrics.runDuration(task: "ops.job", .milliseconds(2400))
        metrics.slotLateness(.milliseconds(7))
        metrics.slotLateness(.milliseconds(-3))  // a clock step back: counted as on time
        metrics.circuit(task: "ops.flaky", open: true)
        metrics.circuit(task: "ops.other", open: false)
        metrics.storeFailed()
        metrics.clockJumped()
        let text = String(decoding: await metrics.scrape(), as: UTF8.self)
        for line in [
            "belfry_attempts_total{task=\"ops.job\",outcome=\"failed\"} 2",
            "belfry_attempts_total{task=\"ops.job\",outcome=\"succeeded\"} 1",
            "belfry_run_duration_seconds_bucket{task=\"ops.job\",le=\"2.5\"} 1",
            "belfry_run_duration_seconds_bucket{task=\"ops.job\",le=\"1.0\"} 0",
            "belfry_run_duration_seconds_count{task=\"ops.job\"} 1",
            "belfry_slot_lateness_seconds_bucket{le=\"0.01\"} 2",
            "belfry_slot_lateness_seconds_bucket{le=\"0.005\"} 1",
            "belfry_runs_running{queue=\"backups\"} 1.0", "belfry_runs_queued{queue=\"backups\"} 4.0", "belfry_runs_queued{queue=\"default\"} 0.0",
            "belfry_circuit_open{task=\"ops.flaky\"} 1.0", "belfry_circuit_open{task=\"ops.other\"} 0.0",
            "belfry_nodes 2.0", "belfry_node_lease_remaining_seconds 8.5", "belfry_triggers{active=\"true\"} 3.0",
            "belfry_store_errors_total 1", "belfry_wall_clock_jumps_total 1", "belfry_build_info{version=\"1\"} 1.0",
        ] {
            #expect(text.contains(line + "\n"), "\(line)")
        }
        // Every family is in the manual's table.
        let manual = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/http.md"), encoding: .utf8)
        for line in text.split(separator: "\n") where line.hasPrefix("# TYPE ") {
            let family = line.split(separator: " ")[2]
            #expect(manual.contains("| `\(family)` |"), "docs/http.md has no row for \(family)")
        }
        let promtool = "/usr/bin/promtool"
        guard FileManager.default.isExecutableFile(atPath: promtool) else {
            print("skipped: promtool check metrics (promtool is not installed; .ci/run installs Debian's prometheus)")
            return
        }
        let check = try await offThePool { () throws -> (status: Int32, output: String) in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: promtool)
            process.arguments = ["check", "metrics"]
            let input = Pipe()
            let output = Pipe()
            (process.standardInput, process.standardOutput, process.standardError) = (input, output, output)
            try process.run()
            input.fileHandleForWriting.write(Data(text.utf8))
            try input.fileHandleForWriting.close()
            let said = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: said, as: UTF8.self))
        }
        #expect(check.status == 0 && check.output.isEmpty, "promtool: \(check.output)")
    }
}

@Suite("HTTP tokens file")
struct TokensTests {
    @Test("made 0600; read back; a file others can read, a bad line, a short token are refused with the line")
    func file() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/state/http-tokens"
        let admin = try HTTPTokens.add(name: "alice", role: .admin, to: path)
        let reader = try HTTPTokens.add(name: "bob", role: .read, to: path)
        var status = stat()
        #expect(stat(path, &status) == 0 && status.st_mode & 0o777 == 0o600)
        let tokens = try HTTPTokens.load(path: path)
        #expect(tokens.authenticate(admin)?.name == "alice" && tokens.authenticate(admin)?.role == .admin)
        #expect(tokens.authenticate(reader)?.role == .read)
        #expect(tokens.authenticate(admin + "x") == nil && tokens.authenticate(String(admin.dropLast())) == nil && tokens.authenticate("") == nil)
        #expect(throws: HTTPSetupError.self) { try HTTPTokens.add(name: "alice", role: .read, to: path) }

        chmod(path, 0o644)
        #expect(throws: HTTPSetupError.self) { try HTTPTokens.load(path: path) }
        chmod(path, 0o600)
        try Data("# comment\nalice admin tooshort\n".utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o600)
        do {
            _ = try HTTPTokens.load(path: path)
            Issue.record("a short token was accepted")
        } catch {
            #expect(error.description.hasSuffix("http-tokens:2: the token is shorter than 16 characters"))
            #expect(!error.description.contains("tooshort"), "no token in an error")
        }
        try Data("carol owner 0123456789abcdef0123\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: HTTPSetupError.self) { try HTTPTokens.load(path: path) }
    }
}

@Suite("JSON and the request gate")
struct JSONAndGateTests {
    @Test("strings with quotes, backslashes, control characters and non-ASCII text read back as written")
    func escapes() throws {
        let texts = ["plain", "", "say \"hi\"", "C:\\path\\", "line\nbreak\r\ttab", "\u{01}\u{1f}\u{7f}", "été 東京 🕰", "\"\\\n", "end\""]
        var bytes: [UInt8] = []
        JSONValue.array(texts.map(JSONValue.string)).write(to: &bytes)
        let decoded = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String]
        #expect(decoded == texts)
        #expect(!bytes.contains { $0 < 0x20 && $0 != UInt8(ascii: "\n") }, "a control character left raw")
        #expect(String(decoding: bytes, as: UTF8.self).contains(#""\u0001\u001f"#))
    }

    @Test("compact and pretty JSON hold the same values; integers at their limits; the API's answers have no spaces")
    func compactAndPretty() throws {
        let value = JSONValue.object([
            ("ints", .array([.int(0), .int(-1), .int(7), .int(1_000_000), .int(.max), .int(.min)])), ("empty", .array([])),
            ("nested", .object([("a", .null), ("b", .bool(true)), ("c", .object([]))])), ("text", .string("x y")),
        ])
        var pretty: [UInt8] = []
        value.write(to: &pretty)
        let compact = value.compactBytes
        #expect(String(decoding: compact, as: UTF8.self)
            == #"{"ints":[0,-1,7,1000000,9223372036854775807,-9223372036854775808],"empty":[],"nested":{"a":null,"b":true,"c":{}},"text":"x y"}"# + "\n")
        let a = try JSONSerialization.jsonObject(with: Data(pretty)) as? NSDictionary
        let b = try JSONSerialization.jsonObject(with: Data(compact)) as? NSDictionary
        #expect(a != nil && a == b)
        #expect(String(decoding: pretty, as: UTF8.self).contains("\n  \"ints\": [\n    0,\n    -1,"))
    }

    @Test("the gate lets `limit` in at once and the others in order, as places free up")
    func gate() async {
        let gate = ConcurrencyLimitMiddleware.Gate(limit: 2)
        let order = Recorder()
        await gate.enter()
        await gate.enter()
        // Each waiter is queued before the next is started, so that the order is known.
        var waiters: [Task<Void, Never>] = []
        for index in 0..<5 {
            waiters.append(Task {
                await gate.enter()
                order.record(String(index))
            })
            while gate.waiting < index + 1 { await Task.yield() }
        }
        #expect(order.items.isEmpty, "nobody gets in while both places are taken")
        // One place freed at a time, and the next freed only once the one let in has said so:
        // waiters resumed together would race to record, which says nothing about the gate.
        for index in 0..<5 {
            gate.leave()
            while order.items.count < index + 1 { await Task.yield() }
        }
        for waiter in waiters { await waiter.value }
        #expect(order.items == ["0", "1", "2", "3", "4"])
    }
}
