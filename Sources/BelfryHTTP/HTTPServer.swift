import BelfryConfig
import BelfryListings
import BelfrySchedule
import BelfryStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOSSL
import Logging
import NIOCore
import Synchronization

/// The daemon's HTTP server: the API under `/api/v1` (a bearer token), `/healthz` and
/// `/metrics` (open, as scrapers and probes expect). Off unless `--http` is given; loopback
/// unless told otherwise.
public enum HTTPServer {
    /// Whether the daemon is healthy: nil, or the reason it is not.
    public typealias Health = @Sendable () async -> String?

    /// The routes, ready for an `Application` (or a test).
    /// What the API asks of the daemon: start a task's run now (its id), cancel a run (whether
    /// it was running or queued, here or on another node).
    public struct Actions: Sendable {
        public var runNow: @Sendable (TaskDefinition, [String: String]) async throws -> Int64
        public var cancel: @Sendable (Int64) async throws -> Bool
        /// Called before each API request is handled: returns when the request may take the
        /// CPU (the daemon lets the first processes of a burst of due runs start first).
        public var yieldToLaunches: @Sendable () async -> Void

        public init(
            runNow: @escaping @Sendable (TaskDefinition, [String: String]) async throws -> Int64,
            cancel: @escaping @Sendable (Int64) async throws -> Bool,
            yieldToLaunches: @escaping @Sendable () async -> Void = {}
        ) {
            (self.runNow, self.cancel, self.yieldToLaunches) = (runNow, cancel, yieldToLaunches)
        }
    }

    /// `changed` is called after each change made through the API (the daemon reads its
    /// triggers again: its own writes do not move the change counter it watches).
    public static func router(
        store: any Store, tokens: HTTPTokens, metrics: MetricsExporter, health: @escaping Health, actions: Actions,
        zones: TimeZoneDatabase = .system, secure: Bool = false, changed: @escaping @Sendable () async -> Void = {}
    ) -> Router<BelfryRequestContext> {
        let router = Router(context: BelfryRequestContext.self)
        router.add(middleware: SecurityHeadersMiddleware())
        router.add(middleware: ErrorMiddleware())
        router.get("healthz") { _, _ in
            if let reason = await health() {
                return json(.object([("status", .string("unhealthy")), ("reason", .string(reason))]), status: .serviceUnavailable)
            }
            return json(.object([("status", .string("ok"))]))
        }
        router.get("metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: await metrics.scrape())))
        }
        router.get("api/v1/openapi.yaml") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "application/yaml"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.yaml)))
        }
        let api = router.group("api/v1").add(middleware: ConcurrencyLimitMiddleware(limit: 1, yield: actions.yieldToLaunches)).add(middleware: TokenMiddleware(tokens: tokens))
        APIRoutes(store: store, zones: zones, actions: actions, changed: changed).add(to: api)
        WebRoutes(store: store, tokens: tokens, zones: zones, actions: actions, secure: secure, changed: changed).add(to: router)
        return router
    }

    /// The application listening at `host:port`, over TLS when given a certificate chain and a
    /// key (PEM files).
    public static func application(
        router: Router<BelfryRequestContext>, host: String, port: Int, tls: (certificate: String, key: String)?, logger: Logger,
        listening: @escaping @Sendable () async -> Void
    ) throws(HTTPSetupError) -> some ApplicationProtocol {
        var server = HTTPServerBuilder.http1()
        if let tls {
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(tls.certificate).map { NIOSSLCertificateSource.certificate($0) }
                let key = try NIOSSLPrivateKey(file: tls.key, format: .pem)
                server = try .tls(.http1(), tlsConfiguration: .makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key)))
            } catch {
                throw HTTPSetupError("cannot use the TLS certificate \(tls.certificate) and key \(tls.key): \(error)")
            }
        }
        return Application(router: router, server: server, configuration: .init(address: .hostname(host, port: port), serverName: "belfry"),
                           onServerRunning: { _ in await listening() }, logger: logger)
    }

    /// `ADDRESS:PORT` of `--http`; whether the address is loopback.
    public static func address(_ text: String) throws(HTTPSetupError) -> (host: String, port: Int, loopback: Bool) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
            throw HTTPSetupError("--http takes ADDRESS:PORT, such as 127.0.0.1:8457, not \"\(text)\"")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let loopback = host == "localhost" || host == "::1" || host.hasPrefix("127.")
        return (host, port, loopback)
    }

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: value.compactBytes)))
    }
}

/// Headers on every answer: only this site's resources, no framing, no type sniffing.
struct SecurityHeadersMiddleware: RouterMiddleware {
    typealias Context = BelfryRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[.contentSecurityPolicy] = "default-src 'self'"
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "same-origin"
        return response
    }
}

/// `Authorization: Bearer TOKEN`, or 401.
struct TokenMiddleware: RouterMiddleware {
    typealias Context = BelfryRequestContext
    let tokens: HTTPTokens

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "),
            let token = tokens.authenticate(String(header.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces))
        else {
            var response = APIError(.unauthorized, "unauthorized", "give a token: Authorization: Bearer TOKEN (belfry http-token makes one)").response
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
        var context = context
        context.token = token
        return try await next(request, context)
    }
}

/// Every failure as `{"error": ..., "detail": ...}`: the API's own errors with their status, the
/// router's (unknown route, body too large) with theirs, anything else as a 500 that says no more
/// than that it happened (the daemon's log has the detail).
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = BelfryRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            var request = request
            if request.method != .get, request.method != .head {
                // Read whole, up to the limit, whether or not the route reads it: a body over 1 MiB is a 413.
                request.body = .init(buffer: try await request.body.collect(upTo: context.maxUploadSize))
            }
            return try await next(request, context)
        } catch let error as APIError {
            return error.response
        } catch let error as any HTTPResponseError {
            let name = error.status == .notFound ? "not_found" : error.status == .contentTooLarge ? "too_large" : "bad_request"
            let detail = error.status == .notFound ? "no such route: \(request.method) \(request.uri.path)" : error.status.reasonPhrase
            return APIError(error.status, name, detail).response
        } catch {
            context.logger.error("HTTP request failed", metadata: ["path": "\(request.uri.path)", "reason": "\(error)"])
            return APIError(.internalServerError, "internal", "the request failed; the daemon's log says why").response
        }
    }
}

/// At most `limit` requests handled at once; the others wait their turn in order. The daemon's
/// first work is its schedule: 50 clients polling the API as fast as they can must not take the
/// CPU the launches need (on two cores they held both, and slots started 20 s late).
struct ConcurrencyLimitMiddleware: RouterMiddleware {
    typealias Context = BelfryRequestContext
    let gate: Gate
    /// Awaited once a request has its place, before it is handled.
    let yield: @Sendable () async -> Void

    init(limit: Int, yield: @escaping @Sendable () async -> Void = {}) {
        gate = Gate(limit: limit)
        self.yield = yield
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        await gate.enter()
        defer { gate.leave() }
        await yield()
        return try await next(request, context)
    }

    /// A lock, not an actor: entering and leaving cost no hop to another executor, and leaving
    /// needs no task of its own.
    final class Gate: Sendable {
        private let limit: Int
        private let state = Mutex<(inside: Int, waiting: [CheckedContinuation<Void, Never>])>((0, []))

        init(limit: Int) { self.limit = limit }

        func enter() async {
            if state.withLock({ state in
                guard state.inside < limit else { return false }
                state.inside += 1
                return true
            }) { return }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                // Looked at again under the lock: a request may have left meanwhile.
                let admitted = state.withLock { state in
                    guard state.inside < limit else {
                        state.waiting.append(continuation)
                        return false
                    }
                    state.inside += 1
                    return true
                }
                if admitted { continuation.resume() }
            }
        }

        /// How many requests wait for a place.
        var waiting: Int { state.withLock { $0.waiting.count } }

        /// Hands the place to the longest waiting request, if any.
        func leave() {
            let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
                if state.waiting.isEmpty {
                    state.inside -= 1
                    return nil
                }
                return state.waiting.removeFirst()
            }
            next?.resume()
        }
    }
}
