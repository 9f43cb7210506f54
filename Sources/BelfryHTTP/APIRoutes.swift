import BelfryConfig
import BelfryListings
import BelfrySchedule
import BelfryStore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// What a request carries once through the middleware: the token it was made with.
public struct BelfryRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var token: HTTPTokens.Token?
    /// The web page's session, when the request came with one.
    var sessionID: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    /// Request bodies over 1 MiB are refused (413).
    public var maxUploadSize: Int { 1 << 20 }
}

/// An answer other than success: `{"error": ..., "detail": ...}` with its status.
public struct APIError: Error, Sendable {
    public var status: HTTPResponse.Status
    public var error: String
    public var detail: String

    public init(_ status: HTTPResponse.Status, _ error: String, _ detail: String) {
        (self.status, self.error, self.detail) = (status, error, detail)
    }

    var response: Response {
        HTTPServer.json(.object([("error", .string(error)), ("detail", .string(detail))]), status: status)
    }
}

/// The routes under `/api/v1`: the CLI's listings and changes over HTTP, with the same JSON.
struct APIRoutes: Sendable {
    let store: any Store
    let zones: TimeZoneDatabase
    let actions: HTTPServer.Actions
    let changed: @Sendable () async -> Void

    func add(to group: RouterGroup<BelfryRequestContext>) {
        group.get("triggers") { request, _ in try await triggers(request) }
        group.get("triggers/:task/:trigger") { _, context in try await trigger(context) }
        group.post("triggers/:task/:trigger/activate") { _, context in try await setActive(true, context) }
        group.post("triggers/:task/:trigger/deactivate") { _, context in try await setActive(false, context) }
        group.get("runs") { request, _ in try await runs(request) }
        group.get("runs/:id") { _, context in try await run(context) }
        group.get("runs/:id/log") { request, context in try await log(request, context) }
        group.get("stats") { request, _ in try await stats(request) }
        group.post("tasks/:task/runs") { request, context in try await runNow(request, context) }
        group.post("runs/:id/cancel") { _, context in try await cancel(context) }
        group.get("next") { request, _ in try next(request) }
    }

    private func triggers(_ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        let limit = try Self.int(query, "limit", in: 1...1_000_000)
        let statuses = try await store.triggers(task: query["task"].map(String.init), limit: limit)
        let next = TriggerStatus.nextSlots(of: statuses, after: Instant.now, zones: zones)
        return HTTPServer.json(.array(zip(statuses, next).map(Listing.trigger)))
    }

    private func trigger(_ context: BelfryRequestContext) async throws -> Response {
        let (task, name) = try Self.target(context)
        let status = try await Self.known { try await store.trigger(task: task, name: name) }
        let next = status.nextSlot(after: Instant.now, zones: zones)
        guard case .object(var members) = Listing.trigger(status, nextSlot: next) else { return HTTPServer.json(.null) }
        // The next 10 slots, with their wall-clock time and DST markers.
        var upcoming: [JSONValue] = []
        if let next, let zone = try? zones.rules(for: status.schedule.timezone), let schedule = try? status.slots(zones: zones) {
            let after = Instant(secondsSinceEpoch: next.secondsSinceEpoch - 1)
            upcoming = MarkedSlots(schedule, zone: zone, after: after).prefix(10).map { Listing.slot($0.slot, zone: zone, skipped: $0.skipped) }
        }
        members.append(("upcoming", .array(upcoming)))
        return HTTPServer.json(.object(members))
    }

    private func setActive(_ active: Bool, _ context: BelfryRequestContext) async throws -> Response {
        let token = try Self.admin(context)
        let (task, name) = try Self.target(context)
        let status = try await Self.known { try await store.setActive(active, task: task, name: name, by: token.name, now: Date()) }
        await changed()
        return HTTPServer.json(Listing.trigger(status, nextSlot: status.nextSlot(after: Instant.now, zones: zones)))
    }

    private func runs(_ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        var filter = RunFilter()
        filter.task = query["task"].map(String.init)
        filter.trigger = query["trigger"].map(String.init)
        if let text = query["state"] {
            guard let state = RunState(rawValue: String(text)) else {
                throw APIError(.badRequest, "bad_request", "state \"\(text)\" is not one of \(RunState.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            filter.state = state
        }
        if let text = query["since"] { filter.since = try Self.date(String(text), field: "since") }
        filter.before = try Self.int(query, "before", in: 1...Int.max).map(Int64.init)
        filter.limit = try Self.int(query, "limit", in: 1...10_000) ?? 50
        return HTTPServer.json(.array(try await store.runs(matching: filter).map(Listing.run)))
    }

    private func run(_ context: BelfryRequestContext) async throws -> Response {
        let id = try Self.runID(context)
        guard let details = try await store.run(id: id) else { throw APIError(.notFound, "not_found", "no run \(id)") }
        return HTTPServer.json(Listing.runDetail(details))
    }

    /// An attempt's log, as text (the last attempt unless `attempt=N`).
    private func log(_ request: Request, _ context: BelfryRequestContext) async throws -> Response {
        let id = try Self.runID(context)
        guard let details = try await store.run(id: id) else { throw APIError(.notFound, "not_found", "no run \(id)") }
        let number = try Self.int(request.uri.queryParameters, "attempt", in: 1...10_000)
        guard let attempt = number.map({ n in details.attempts.first { $0.number == n } }) ?? details.attempts.last else {
            throw APIError(.notFound, "not_found", number.map { "run \(id) has no attempt \($0)" } ?? "run \(id) has no attempts yet")
        }
        guard let path = attempt.logPath, let data = AttemptLogs.contents(of: attempt) else {
            throw APIError(.notFound, "not_found", "the log of run \(id) attempt \(attempt.number) is not on this machine")
        }
        if request.uri.queryParameters["follow"] == "1" {
            return follow(path: path, run: id, attempt: attempt.number)
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Starts a run now, with `{"inputs": {...}}` (or no body); 202 with its id.
    private func runNow(_ request: Request, _ context: BelfryRequestContext) async throws -> Response {
        _ = try Self.admin(context)
        guard let name = context.parameters.get("task") else { throw APIError(.badRequest, "bad_request", "the path names a task") }
        let bytes = try await request.body.collect(upTo: context.maxUploadSize)
        var inputs: [String: String] = [:]
        if bytes.readableBytes > 0 {
            guard let object = try? JSONSerialization.jsonObject(with: Data(buffer: bytes)) as? [String: Any] else {
                throw APIError(.badRequest, "bad_request", "the body is not a JSON object: send {\"inputs\": {\"NAME\": \"VALUE\"}}")
            }
            if let given = object["inputs"] {
                guard let values = given as? [String: Any], values.values.allSatisfy({ $0 is String }) else {
                    throw APIError(.badRequest, "bad_request", "inputs must be an object of strings")
                }
                inputs = values.mapValues { $0 as! String }
            }
            if let unknown = object.keys.first(where: { $0 != "inputs" }) {
                throw APIError(.badRequest, "bad_request", "unknown field \"\(unknown)\": the body has inputs only")
            }
        }
        let task = try await Self.known { try await store.task(named: name) }
        for param in task.params where param.required && inputs[param.name] == nil && param.defaultValue == nil {
            throw APIError(.badRequest, "bad_request", "task \(task.fullName) needs input \"\(param.name)\"")
        }
        if let unknown = inputs.keys.sorted().first(where: { key in !task.params.contains { $0.name == key } }) {
            throw APIError(.badRequest, "bad_request", "task \(task.fullName) has no param \"\(unknown)\"")
        }
        let id: Int64
        do { id = try await actions.runNow(task, inputs) } catch let error as StoreError { throw error } catch {
            throw APIError(.serviceUnavailable, "unavailable", "\(error)")
        }
        return HTTPServer.json(.object([("id", .int(id))]), status: .accepted)
    }

    /// Cancels a run, here or (on PostgreSQL) on the node that runs it; 202, or 409 if it is not running.
    private func cancel(_ context: BelfryRequestContext) async throws -> Response {
        _ = try Self.admin(context)
        let id = try Self.runID(context)
        guard let details = try await store.run(id: id) else { throw APIError(.notFound, "not_found", "no run \(id)") }
        guard !details.run.state.isFinal, try await actions.cancel(id) else {
            throw APIError(.conflict, "conflict", "run \(id) is \(details.run.state.rawValue): there is nothing to cancel here")
        }
        return HTTPServer.json(.object([("id", .int(id)), ("state", .string("cancelling"))]), status: .accepted)
    }

    /// The log as server-sent events: what it holds, then what is added, one `data:` line per
    /// line of output, until the attempt ends (`event: end`, with the run's state).
    private func follow(path: String, run id: Int64, attempt number: Int) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let store = self.store
        return Response(status: .ok, headers: headers, body: .init { writer in
            // The file is made at the attempt's first output: until then there is nothing to read.
            var handle: FileHandle?
            defer { try? handle?.close() }
            func read() -> Data {
                if handle == nil { handle = FileHandle(forReadingAtPath: path) }
                return handle?.readDataToEndOfFile() ?? Data()
            }
            var pending = Data()
            func send(_ data: Data, final: Bool) async throws {
                pending.append(data)
                var events = ""
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    events += "data: " + String(decoding: pending[pending.startIndex..<newline], as: UTF8.self) + "\n\n"
                    pending = Data(pending[pending.index(after: newline)...])
                }
                if final, !pending.isEmpty {
                    events += "data: " + String(decoding: pending, as: UTF8.self) + "\n\n"
                    pending = Data()
                }
                if !events.isEmpty { try await writer.write(ByteBuffer(string: events)) }
            }
            while true {
                try await send(read(), final: false)
                guard let details = try await store.run(id: id) else { break }
                let ended = details.attempts.first { $0.number == number }?.finishedAt != nil || details.run.state.isFinal
                if ended {
                    try await send(read(), final: true)
                    try await writer.write(ByteBuffer(string: "event: end\ndata: \(details.run.state.rawValue)\n\n"))
                    break
                }
                try await Task.sleep(for: .milliseconds(500))
            }
            try await writer.finish(nil)
        })
    }

    private func stats(_ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        let since = try query["since"].map { try Self.date(String($0), field: "since") }
        let statistics = try await store.statistics(task: query["task"].map(String.init), since: since)
        return HTTPServer.json(.array(statistics.map(Listing.statistics)))
    }

    /// Slots of a cron expression or a fixed rate, as `belfry next` prints them.
    private func next(_ request: Request) throws -> Response {
        let query = request.uri.queryParameters
        let zoneName = query["timezone"].map(String.init) ?? "UTC"
        let zone: ZoneRules
        do { zone = try zones.rules(for: zoneName) } catch { throw APIError(.badRequest, "bad_request", "\(error)") }
        let count = try Self.int(query, "count", in: 1...1000) ?? 10
        do {
            let after = try query["after"].map { try InstantText.parse(String($0), zone: zone, field: "after") } ?? Instant.now
            let schedule: any SlotSchedule
            switch (query["cron"], query["every"]) {
            case (let cron?, nil):
                schedule = try CronSchedule(
                    parsing: PredefinedTrigger(rawValue: String(cron))?.expression ?? String(cron), zone: zone,
                    hashKey: query["hash_key"].map(String.init))
            case (nil, let every?):
                let interval = try DurationText.wholeSeconds(String(every), field: "every")
                let start = try query["start_time"].map { try InstantText.parse(String($0), zone: zone, field: "start_time") }
                schedule = try FixedRate(interval: interval, startTime: start).schedule(activatedAt: after)
            default:
                throw APIError(.badRequest, "bad_request", "give cron=EXPRESSION or every=DURATION, one of them")
            }
            let slots = MarkedSlots(schedule, zone: zone, after: after).prefix(count).map { Listing.slot($0.slot, zone: zone, skipped: $0.skipped) }
            return HTTPServer.json(.array(Array(slots)))
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError(.badRequest, "bad_request", "\(error)")
        }
    }

    // MARK: Helpers

    static func admin(_ context: BelfryRequestContext) throws -> HTTPTokens.Token {
        guard let token = context.token, token.role == .admin else {
            throw APIError(.forbidden, "forbidden", "this token may read, not change: use an admin token")
        }
        return token
    }

    static func target(_ context: BelfryRequestContext) throws -> (task: String, trigger: String) {
        guard let task = context.parameters.get("task"), let trigger = context.parameters.get("trigger") else {
            throw APIError(.badRequest, "bad_request", "the path names a task and a trigger")
        }
        return (task, trigger)
    }

    static func runID(_ context: BelfryRequestContext) throws -> Int64 {
        guard let text = context.parameters.get("id"), let id = Int64(text), id > 0 else {
            throw APIError(.badRequest, "bad_request", "a run id is a positive integer")
        }
        return id
    }

    static func int(_ query: Parameters, _ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text = query[Substring(name)] else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw APIError(.badRequest, "bad_request", "\(name) must be an integer from \(range.lowerBound) to \(range.upperBound), not \"\(text)\"")
        }
        return value
    }

    static func date(_ text: String, field: String) throws -> Date {
        do {
            let instant = try InstantText.parse(text, zone: TimeZoneDatabase.system.rules(for: "UTC"), field: field)
            return Date(timeIntervalSince1970: TimeInterval(instant.secondsSinceEpoch))
        } catch {
            throw APIError(.badRequest, "bad_request", "\(error)")
        }
    }

    /// Runs a lookup; an unknown task or trigger is a 404.
    static func known<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as StoreError {
            switch error {
            case .unknownTrigger, .unknownTask: throw APIError(.notFound, "not_found", "\(error)")
            default: throw error
            }
        }
    }
}
