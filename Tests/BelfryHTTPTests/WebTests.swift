@testable import BelfryHTTP
import BelfryStore
import BelfryTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Web dashboard")
struct WebTests {
    /// Logs in with `token`; the session cookie and the page's CSRF token.
    static func login(_ client: some TestClientProtocol, token: String) async throws -> (cookie: String, csrf: String) {
        let response = try await client.execute(uri: "/login", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
                                                body: ByteBuffer(string: "token=\(token)"))
        #expect(response.status == .seeOther && response.headers[.location] == "/")
        let setCookie = try #require(response.headers[.setCookie])
        #expect(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Strict"))
        let cookie = String(setCookie.prefix { $0 != ";" })
        let page = String(buffer: try await client.execute(uri: "/triggers", method: .get, headers: [.cookie: cookie]).body)
        let marker = "name=\"csrf\" value=\""
        let start = try #require(page.range(of: marker)).upperBound
        return (cookie, String(page[start...].prefix { $0 != "\"" }))
    }

    @Test("pages need a session; a wrong token is refused; every page renders with the security headers")
    func pages() async throws {
        let harness = try await APIHarness()
        try await harness.application.test(.router) { client in
            let anonymous = try await client.execute(uri: "/", method: .get)
            #expect(anonymous.status == .seeOther && anonymous.headers[.location] == "/login")
            let wrong = try await client.execute(uri: "/login", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
                                                 body: ByteBuffer(string: "token=nope-nope-nope-nope"))
            #expect(wrong.status == .unauthorized && wrong.headers[.setCookie] == nil)

            let (cookie, _) = try await Self.login(client, token: APIHarness.reader)
            for uri in ["/", "/triggers", "/triggers?q=hourly", "/runs", "/runs?state=failed", "/runs/2", "/tasks/ops.job"] {
                let page = try await client.execute(uri: uri, method: .get, headers: [.cookie: cookie])
                #expect(page.status == .ok, "\(uri)")
                #expect(page.headers[.contentSecurityPolicy] == "default-src 'self'", "\(uri)")
                let text = String(buffer: page.body)
                #expect(text.hasPrefix("<!doctype html>") && !text.contains("<script>"), "\(uri): no inline script")
            }
            let log = try await client.execute(uri: "/runs/2/log.txt", method: .get, headers: [.cookie: cookie])
            #expect(String(buffer: log.body) == "output 1\n" && log.headers[HTTPField.Name("X-Run-State")!] == "failed")
            let task = String(buffer: try await client.execute(uri: "/tasks/ops.job", method: .get, headers: [.cookie: cookie]).body)
            #expect(task.contains("<svg class=\"chart\"") && task.contains("<rect"))
        }
    }

    @Test("forms need the session's CSRF token and this site's origin; a read session cannot change; an admin session can")
    func forms() async throws {
        let harness = try await APIHarness()
        try await harness.application.test(.router) { client in
            let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
            let (reader, readerCSRF) = try await Self.login(client, token: APIHarness.reader)
            var headers = form
            headers[.cookie] = reader
            let refused = try await client.execute(uri: "/triggers/ops.job/rate/activate", method: .post, headers: headers,
                                                   body: ByteBuffer(string: "csrf=\(readerCSRF)"))
            #expect(refused.status == .forbidden)

            let (admin, csrf) = try await Self.login(client, token: APIHarness.admin)
            headers[.cookie] = admin
            let noToken = try await client.execute(uri: "/triggers/ops.job/rate/activate", method: .post, headers: headers, body: ByteBuffer(string: ""))
            #expect(noToken.status == .forbidden)
            var crossSite = headers
            crossSite[.origin] = "https://evil.example"
            let forged = try await client.execute(uri: "/triggers/ops.job/rate/activate", method: .post, headers: crossSite,
                                                  body: ByteBuffer(string: "csrf=\(csrf)"))
            #expect(forged.status == .forbidden)
            #expect(try harness.store.trigger(task: "ops.job", name: "rate").active == false)

            let done = try await client.execute(uri: "/triggers/ops.job/rate/activate", method: .post, headers: headers, body: ByteBuffer(string: "csrf=\(csrf)"))
            #expect(done.status == .seeOther)
            #expect(try harness.store.trigger(task: "ops.job", name: "rate").updatedBy == "ops-admin")
            let ran = try await client.execute(uri: "/tasks/ops.job/run", method: .post, headers: headers, body: ByteBuffer(string: "csrf=\(csrf)"))
            #expect(ran.status == .seeOther && ran.headers[.location] == "/runs/4")
        }
        #expect(harness.started.items == ["ops.job "])
    }

    @Test("names and output from jobs and definitions are shown as text, never as markup")
    func escaping() async throws {
        let harness = try await APIHarness()
        let hostile = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>"
        let id = try harness.store.createRun(task: "ops.job", trigger: nil, slot: nil, origin: .manual, inputs: nil, at: Date())
        try await harness.store.startAttempt(run: id, number: 1, pid: nil, logPath: nil, at: Date())
        try await harness.store.finishAttempt(run: id, number: 1, exitCode: 1, signal: nil, timedOut: false, outputTail: Data(hostile.utf8), at: Date())
        try await harness.store.finishRun(id, state: .failed, reason: hostile, exitCode: 1, commandUsed: nil, at: Date())
        try await harness.application.test(.router) { client in
            let (cookie, _) = try await Self.login(client, token: APIHarness.reader)
            for uri in ["/runs/\(id)", "/runs", "/triggers?q=\(HTML.component(hostile))"] {
                let text = String(buffer: try await client.execute(uri: uri, method: .get, headers: [.cookie: cookie]).body)
                #expect(!text.contains("<script>alert") && !text.contains("<img src=x"), "\(uri)")
            }
            let run = String(buffer: try await client.execute(uri: "/runs/\(id)", method: .get, headers: [.cookie: cookie]).body)
            #expect(run.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"))
        }
    }
}
