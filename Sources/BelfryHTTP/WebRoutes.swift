import BelfryConfig
import BelfryListings
import BelfrySchedule
import BelfryStore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The web dashboard: server-rendered pages behind a login form, every value escaped, no
/// inline script (one small file follows a running attempt's log).
struct WebRoutes: Sendable {
    let store: any Store
    let tokens: HTTPTokens
    let zones: TimeZoneDatabase
    let actions: HTTPServer.Actions
    /// Served over TLS: the session cookie is `Secure`.
    let secure: Bool
    let changed: @Sendable () async -> Void
    let sessions = Sessions()

    func add(to router: Router<BelfryRequestContext>) {
        router.get("login") { request, _ in page("Log in", session: nil, body: loginForm(error: nil)) }
        router.post("login") { request, context in try await login(request, context) }
        router.get("static/belfry.css") { _, _ in asset(WebAssets.css, type: "text/css; charset=utf-8") }
        router.get("static/follow.js") { _, _ in asset(WebAssets.followScript, type: "text/javascript; charset=utf-8") }

        let pages = router.group().add(middleware: SessionMiddleware(sessions: sessions))
        pages.get("/") { _, context in try await overview(context) }
        pages.get("triggers") { request, context in try await triggers(request, context) }
        pages.get("runs") { request, context in try await runs(request, context) }
        pages.get("runs/:id") { _, context in try await run(context) }
        pages.get("runs/:id/log.txt") { request, context in try await logText(request, context) }
        pages.get("tasks/:task") { _, context in try await task(context) }
        pages.post("triggers/:task/:trigger/:action") { request, context in try await triggerAction(request, context) }
        pages.post("tasks/:task/run") { request, context in try await runNow(request, context) }
        pages.post("runs/:id/cancel") { request, context in try await cancel(request, context) }
        pages.post("logout") { request, context in try await logout(request, context) }
    }

    // MARK: Login

    private func loginForm(error: String?) -> HTML {
        """
        <h1>Belfry</h1>
        \(error.map { HTML("<p class=\"error\">\($0)</p>") } ?? "")
        <form method="post" action="/login" class="login">
          <label>Token <input type="password" name="token" autocomplete="current-password" required autofocus></label>
          <button type="submit">Log in</button>
        </form>
        <p class="hint">A token from the daemon's tokens file, or made with <code>belfry http-token</code>.</p>
        """
    }

    private func login(_ request: Request, _ context: BelfryRequestContext) async throws -> Response {
        try Self.sameOrigin(request)
        guard sessions.mayTryLogin() else {
            return page("Log in", session: nil, body: loginForm(error: "Too many failed logins: wait a minute."), status: .tooManyRequests)
        }
        let form = try await Self.form(request, context)
        guard let token = form["token"].flatMap({ tokens.authenticate($0) }) else {
            sessions.loginFailed()
            return page("Log in", session: nil, body: loginForm(error: "That token is not valid."), status: .unauthorized)
        }
        var response = Self.redirect("/")
        response.headers[.setCookie] = "\(Sessions.cookie)=\(sessions.open(token)); Path=/; HttpOnly; SameSite=Strict\(secure ? "; Secure" : "")"
        return response
    }

    private func logout(_ request: Request, _ context: BelfryRequestContext) async throws -> Response {
        _ = try await checkedForm(request, context)  // this site's form, this session's CSRF token
        if let id = Self.cookie(request, Sessions.cookie) { sessions.close(id) }
        var response = Self.redirect("/login")
        response.headers[.setCookie] = "\(Sessions.cookie)=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
        return response
    }

    // MARK: Pages

    private func overview(_ context: BelfryRequestContext) async throws -> Response {
        let session = try Self.session(context, sessions)
        let statuses = try await store.triggers(task: nil)
        let now = Instant.now
        let active = statuses.filter(\.active)
        let failing = Set(statuses.compactMap { $0.lastRun?.state == "failed" || $0.lastRun?.state == "timed_out" ? $0.task : nil })
        var filter = RunFilter()
        filter.since = Date().addingTimeInterval(-86400)
        filter.limit = 10_000
        let recent = try await store.runs(matching: filter)
        var byState: [String: Int] = [:]
        for run in recent { byState[run.state.rawValue, default: 0] += 1 }
        // The next 24 hours: the next slot of each active trigger within them, soonest first.
        let next = zip(active, TriggerStatus.nextSlots(of: active, after: now, zones: zones))
            .compactMap { status, slot in slot.map { (status, $0) } }
            .filter { $0.1.secondsSinceEpoch - now.secondsSinceEpoch <= 86400 }
            .sorted { $0.1 < $1.1 }
        let upcoming: [HTML] = next.prefix(50).map { status, slot in
            "<li><time>\(localTime(slot, zone: status.schedule.timezone))</time> \(link(status))</li>"
        }
        let body: HTML = """
            <h1>Overview</h1>
            <section class="cards">
              <div class="card"><b>\(active.count)</b> active triggers</div>
              <div class="card"><b>\(statuses.count - active.count)</b> inactive</div>
              <div class="card \(failing.isEmpty ? "" : "bad")"><b>\(failing.count)</b> tasks whose last run failed</div>
              <div class="card"><b>\(recent.count)</b> runs in the last 24 h</div>
            </section>
            <h2>The last 24 hours</h2>
            <ul class="states">\(byState.sorted { $0.key < $1.key }.map { HTML("<li class=\"state-\($0.key)\">\($0.key): \($0.value)</li>") })</ul>
            <h2>The next 24 hours</h2>
            <ol class="timeline">\(upcoming)</ol>
            \(next.count > 50 ? HTML("<p class=\"hint\">and \(next.count - 50) more slots</p>") : "")
            <h2>Coming DST changes</h2>
            \(dstChanges(active, now: now))
            """
        return page("Overview", session: session, body: body)
    }

    /// The next DST change within 180 days in each zone of the active triggers, and each of their
    /// slots around it with its marker: what every trigger will do.
    private func dstChanges(_ active: [TriggerStatus], now: Instant) -> HTML {
        var sections: [HTML] = []
        let byZone = Dictionary(grouping: active.filter { $0.schedule.kind == "cron" }, by: \.schedule.timezone)
        for (name, statuses) in byZone.sorted(by: { $0.key < $1.key }) {
            guard let zone = try? zones.rules(for: name) else { continue }
            var previous = zone.wallClock(at: now).offset
            var change: Instant?
            var hour = now.secondsSinceEpoch
            while hour < now.secondsSinceEpoch + 180 * 86400 {
                hour += 3600
                let offset = zone.wallClock(at: Instant(secondsSinceEpoch: hour)).offset
                if offset != previous {
                    change = Instant(secondsSinceEpoch: hour)
                    break
                }
                previous = offset
            }
            guard var change else { continue }
            // The transition to the second, within the hour found.
            var low = change.secondsSinceEpoch - 3600, high = change.secondsSinceEpoch
            while high - low > 1 {
                let middle = (low + high) / 2
                if zone.wallClock(at: Instant(secondsSinceEpoch: middle)).offset == previous { low = middle } else { high = middle }
            }
            change = Instant(secondsSinceEpoch: high)
            let after = zone.wallClock(at: change).offset
            // What the wall clock reads at the change, under the old offset and under the new.
            let from = Self.clock(change.secondsSinceEpoch + Int64(previous)), to = Self.clock(change.secondsSinceEpoch + Int64(after))
            let what: String = after > previous
                ? "The clock jumps from \(from) to \(to): the times between do not happen that day (a trigger there skips them, or with dst: { skipped: shift } runs at \(to))"
                : "The clock goes back from \(from) to \(to): the times between happen twice (a trigger there runs at the first, or with dst: { repeated: twice } at both)"
            var rows: [HTML] = []
            for status in statuses.prefix(20) {
                guard let slots = try? status.slots(zones: zones) else { continue }
                var slot = slots.nextSlot(after: Instant(secondsSinceEpoch: change.secondsSinceEpoch - 86400 - 3600))
                var around: [HTML] = []
                while let current = slot, current.secondsSinceEpoch < change.secondsSinceEpoch + 86400, around.count < 6 {
                    let wall = zone.wallClock(at: current)
                    around.append("<li>\(localTime(current, zone: name))\(wall.marker.map { HTML(" <mark>\($0.rawValue)</mark>") } ?? "")</li>")
                    slot = slots.nextSlot(after: current)
                }
                rows.append("<tr><td>\(link(status))</td><td><code>\(status.schedule.text)</code></td><td><ul>\(around)</ul></td></tr>")
            }
            sections.append("""
                <h3>\(name): \(localTime(change, zone: name)), UTC\(Self.offset(previous)) → UTC\(Self.offset(after))</h3>
                <p>\(what).</p>
                <table><tr><th>trigger</th><th>schedule</th><th>its slots from a day before to a day after</th></tr>\(rows)</table>
                """)
        }
        return sections.isEmpty ? "<p class=\"hint\">No DST change in the next 180 days in the zones of the active cron triggers.</p>" : "\(sections)"
    }

    private func triggers(_ request: Request, _ context: BelfryRequestContext) async throws -> Response {
        let session = try Self.session(context, sessions)
        let query = request.uri.queryParameters["q"].map(String.init) ?? ""
        // Without a search, only what is shown is read (and one more, to know there are more).
        var statuses = try await store.triggers(task: nil, limit: query.isEmpty ? 501 : nil)
        if !query.isEmpty { statuses = statuses.filter { "\($0.task) \($0.trigger)".localizedCaseInsensitiveContains(query) } }
        let shown = Array(statuses.prefix(500))
        let next = TriggerStatus.nextSlots(of: shown, after: Instant.now, zones: zones)
        let rows: [HTML] = zip(shown, next).map { status, slot in
            let path = "/triggers/\(HTML.component(status.task))/\(HTML.component(status.trigger))"
            let toggle: HTML = status.active
                ? form("\(path)/deactivate", session: session, label: "Deactivate")
                : form("\(path)/activate", session: session, label: "Activate")
            return """
                <tr><td>\(link(status))</td><td><code>\(status.schedule.text)</code></td><td>\(status.schedule.timezone)</td>
                <td>\(status.active ? "yes" : "no")</td><td>\(slot.map { localTime($0, zone: status.schedule.timezone) } ?? "-")</td>
                <td>\(status.lastRun.map { HTML("<a href=\"/runs/\($0.id)\" class=\"state-\($0.state)\">\($0.state)</a>") } ?? "-")</td>
                <td class="actions">\(toggle)\(form("/tasks/\(HTML.component(status.task))/run", session: session, label: "Run now"))</td></tr>
                """
        }
        let body: HTML = """
            <h1>Triggers</h1>
            <form method="get" action="/triggers" class="search"><input type="search" name="q" value="\(query)" placeholder="task or trigger"> <button>Search</button></form>
            <table><tr><th>trigger</th><th>schedule</th><th>zone</th><th>active</th><th>next slot</th><th>last run</th><th></th></tr>\(rows)</table>
            \(statuses.count > shown.count ? HTML("<p class=\"hint\">The first \(shown.count) are shown: search to narrow.</p>") : "")
            """
        return page("Triggers", session: session, body: body)
    }

    private func runs(_ request: Request, _ context: BelfryRequestContext) async throws -> Response {
        let session = try Self.session(context, sessions)
        let query = request.uri.queryParameters
        var filter = RunFilter()
        filter.task = query["task"].flatMap { $0.isEmpty ? nil : String($0) }
        filter.state = query["state"].flatMap { RunState(rawValue: String($0)) }
        filter.before = query["before"].flatMap { Int64($0) }
        filter.limit = 50
        let runs = try await store.runs(matching: filter)
        let rows: [HTML] = runs.map { run in
            """
            <tr><td><a href="/runs/\(run.id ?? 0)">\(run.id ?? 0)</a></td><td><a href="/tasks/\(HTML.component(run.task))">\(run.task)</a></td>
            <td>\(run.trigger ?? "(\(run.origin.rawValue))")</td><td>\(run.slot?.rfc3339 ?? "-")</td>
            <td class="state-\(run.state.rawValue)">\(run.state.rawValue)</td><td>\(run.attempts)</td><td>\(run.reason ?? "")</td></tr>
            """
        }
        let states: [HTML] = RunState.allCases.map { state in
            "<option value=\"\(state.rawValue)\"\(HTML(markup: filter.state == state ? " selected" : ""))>\(state.rawValue)</option>"
        }
        var more: HTML = ""
        if runs.count == 50, let last = runs.last?.id {
            var next = "/runs?before=\(last)"
            if let task = filter.task { next += "&task=\(HTML.component(task))" }
            if let state = filter.state { next += "&state=\(state.rawValue)" }
            more = "<p><a href=\"\(next)\">Older runs</a></p>"
        }
        let body: HTML = """
            <h1>Runs</h1>
            <form method="get" action="/runs" class="search"><input name="task" value="\(filter.task ?? "")" placeholder="ENV.TASK">
            <select name="state"><option value="">any state</option>\(states)</select> <button>Filter</button></form>
            <table><tr><th>run</th><th>task</th><th>trigger</th><th>slot</th><th>state</th><th>attempts</th><th>reason</th></tr>\(rows)</table>
            \(more)
            """
        return page("Runs", session: session, body: body)
    }

    private func run(_ context: BelfryRequestContext) async throws -> Response {
        let session = try Self.session(context, sessions)
        let id = try APIRoutes.runID(context)
        guard let details = try await store.run(id: id) else { throw APIError(.notFound, "not_found", "no run \(id)") }
        let run = details.run
        let attempts: [HTML] = details.attempts.map { attempt in
            let end: String = attempt.timedOut ? "timed out" : attempt.signal.map { "signal \($0)" } ?? attempt.exitCode.map { "exit \($0)" }
                ?? (attempt.finishedAt == nil ? "running" : "interrupted")
            return """
                <tr><td>\(attempt.number)</td><td>\(Listing.rfc3339(attempt.startedAt))</td><td>\(attempt.finishedAt.map(Listing.rfc3339) ?? "-")</td>
                <td>\(attempt.pid.map { String($0) } ?? "-")</td><td>\(end)</td></tr>
                """
        }
        let tail = details.attempts.last?.outputTail.map { String(decoding: $0, as: UTF8.self) } ?? ""
        let cancel: HTML = run.state.isFinal ? "" : form("/runs/\(id)/cancel", session: session, label: "Cancel")
        let body: HTML = """
            <h1>Run \(id): <a href="/tasks/\(HTML.component(run.task))">\(run.task)</a> <span class="state-\(run.state.rawValue)">\(run.state.rawValue)</span></h1>
            <dl><dt>trigger</dt><dd>\(run.trigger ?? "-")</dd><dt>slot</dt><dd>\(run.slot?.rfc3339 ?? "-")</dd>
            <dt>origin</dt><dd>\(run.origin.rawValue)</dd><dt>reason</dt><dd>\(run.reason ?? "-")</dd>
            <dt>command used</dt><dd>\(run.commandUsed ?? "-")</dd><dt>node</dt><dd>\(run.node ?? "-")</dd></dl>
            \(cancel)
            <h2>Attempts</h2>
            <table><tr><th>#</th><th>started</th><th>finished</th><th>pid</th><th>ended</th></tr>\(attempts)</table>
            <h2>Output</h2>
            <pre id="log" data-src="/runs/\(id)/log.txt" data-follow="\(run.state.isFinal ? "no" : "yes")">\(tail)</pre>
            <script src="/static/follow.js"></script>
            """
        return page("Run \(id)", session: session, body: body)
    }

    /// The last attempt's whole log, for the page's live follow.
    private func logText(_ request: Request, _ context: BelfryRequestContext) async throws -> Response {
        _ = try Self.session(context, sessions)
        let id = try APIRoutes.runID(context)
        guard let details = try await store.run(id: id), let attempt = details.attempts.last, let data = AttemptLogs.contents(of: attempt)
        else { throw APIError(.notFound, "not_found", "no log for run \(id) on this machine") }
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        headers[HTTPField.Name("X-Run-State")!] = details.run.state.rawValue
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data.suffix(256 * 1024))))
    }

    private func task(_ context: BelfryRequestContext) async throws -> Response {
        let session = try Self.session(context, sessions)
        guard let name = context.parameters.get("task") else { throw APIError(.badRequest, "bad_request", "no task") }
        let definition = try await APIRoutes.known { try await store.task(named: name) }
        let statistics = try await store.statistics(task: name, since: nil).first
        var filter = RunFilter()
        filter.task = name
        filter.limit = 60
        let recent = try await store.runs(matching: filter).reversed()
        let body: HTML = """
            <h1>\(definition.fullName)</h1>
            \(definition.description.map { HTML("<p>\($0)</p>") } ?? "")
            <section class="cards">
              <div class="card"><b>\(statistics.map { String(format: "%.1f%%", $0.successRate * 100) } ?? "-")</b> succeeded</div>
              <div class="card"><b>\(statistics?.p50Duration.map { String(format: "%.3f s", $0) } ?? "-")</b> p50</div>
              <div class="card"><b>\(statistics?.p95Duration.map { String(format: "%.3f s", $0) } ?? "-")</b> p95</div>
              <div class="card"><b>\(statistics?.runs ?? 0)</b> runs</div>
            </section>
            <h2>Durations of the last \(recent.count) runs</h2>
            \(Self.chart(Array(recent)))
            \(form("/tasks/\(HTML.component(name))/run", session: session, label: "Run now"))
            """
        return page(definition.fullName, session: session, body: body)
    }

    /// Bars of run durations, as inline SVG (no script): failed runs in red.
    static func chart(_ runs: [RunRecord]) -> HTML {
        let durations = runs.map { run -> Double in
            guard let start = run.startedAt, let end = run.finishedAt else { return 0 }
            return max(0, end.timeIntervalSince(start))
        }
        guard let greatest = durations.max() else { return "<p class=\"hint\">No run yet.</p>" }
        let longest = max(greatest, 0.001)
        let width = 600.0, height = 120.0
        let bar = width / Double(max(durations.count, 1))
        var bars: [HTML] = []
        for (index, (run, duration)) in zip(runs, durations).enumerated() {
            let h = max(1, duration / longest * height)
            let x = String(format: "%.1f", Double(index) * bar), y = String(format: "%.1f", height - h)
            let w = String(format: "%.1f", max(1, bar - 1)), hh = String(format: "%.1f", h)
            bars.append("<rect x=\"\(x)\" y=\"\(y)\" width=\"\(w)\" height=\"\(hh)\" class=\"bar state-\(run.state.rawValue)\"><title>run \(run.id ?? 0): \(String(format: "%.3f s", duration)) \(run.state.rawValue)</title></rect>")
        }
        return "<svg class=\"chart\" viewBox=\"0 0 600 120\" role=\"img\" aria-label=\"durations\">\(bars)</svg><p class=\"hint\">longest: \(String(format: "%.3f s", longest))</p>"
    }

    // MARK: Forms

    private func triggerAction(_ request: Request, _ context: BelfryRequestContext) async throws -> Response {
        let session = try await checkedForm(request, context).session
        let (task, name) = try APIRoutes.target(context)
        guard let action = context.parameters.get("action"), action == "activate" || action == "deactivate" else {
            throw APIError(.notFound, "not_found", "no such action")
        }
        try Self.admin(session)
        _ = try await APIRoutes.known { try await store.setActive(action == "activate", task: task, name: name, by: session.token.name, now: Date()) }
        await changed()
        return Self.redirect("/triggers")
    }

    private func runNow(_ request: Request, _ context: BelfryRequestContext) async throws -> Response {
        let session = try await checkedForm(request, context).session
        try Self.admin(session)
        guard let name = context.parameters.get("task") else { throw APIError(.badRequest, "bad_request", "no task") }
        let task = try await APIRoutes.known { try await store.task(named: name) }
        if let missing = task.params.first(where: { $0.required && $0.defaultValue == nil }) {
            throw APIError(.badRequest, "bad_request", "task \(task.fullName) needs input \"\(missing.name)\": run it through the API or the CLI")
        }
        let id = try await actions.runNow(task, [:])
        return Self.redirect("/runs/\(id)")
    }

    private func cancel(_ request: Request, _ context: BelfryRequestContext) async throws -> Response {
        let session = try await checkedForm(request, context).session
        try Self.admin(session)
        let id = try APIRoutes.runID(context)
        _ = try await actions.cancel(id)
        return Self.redirect("/runs/\(id)")
    }

    /// A form POST from a page of this site: same origin, the session's CSRF token.
    private func checkedForm(_ request: Request, _ context: BelfryRequestContext) async throws -> (session: Sessions.Session, form: [String: String]) {
        try Self.sameOrigin(request)
        let session = try Self.session(context, sessions)
        let form = try await Self.form(request, context)
        guard let csrf = form["csrf"], HTTPTokens.constantTimeEqual(Array(csrf.utf8), Array(session.csrf.utf8)) else {
            throw APIError(.forbidden, "forbidden", "the form's CSRF token is missing or stale: reload the page")
        }
        return (session, form)
    }

    private func form(_ action: String, session: Sessions.Session, label: String) -> HTML {
        """
        <form method="post" action="\(action)" class="inline"><input type="hidden" name="csrf" value="\(session.csrf)"><button type="submit">\(label)</button></form>
        """
    }

    // MARK: Helpers

    private func link(_ status: TriggerStatus) -> HTML {
        "<a href=\"/tasks/\(HTML.component(status.task))\">\(status.task)</a> \(status.trigger)"
    }

    private func localTime(_ instant: Instant, zone name: String) -> String {
        guard let zone = try? zones.rules(for: name) else { return instant.rfc3339 }
        let wall = zone.wallClock(at: instant)
        let text = Instant(secondsSinceEpoch: wall.local).rfc3339
        return "\(text.prefix(10)) \(text.dropFirst(11).prefix(8)) \(wall.abbreviation)"
    }

    /// `02:00`: the time of day of local seconds.
    static func clock(_ localSeconds: Int64) -> String {
        String(Instant(secondsSinceEpoch: localSeconds).rfc3339.dropFirst(11).prefix(5))
    }

    static func offset(_ seconds: Int32) -> String {
        let sign = seconds < 0 ? "-" : "+"
        let value = abs(Int(seconds))
        return String(format: "%@%02d:%02d", sign, value / 3600, value % 3600 / 60)
    }

    private func page(_ title: String, session: Sessions.Session?, body: HTML, status: HTTPResponse.Status = .ok) -> Response {
        let nav: HTML = session.map { session in
            """
            <nav><a href="/">Overview</a> <a href="/triggers">Triggers</a> <a href="/runs">Runs</a>
            <span class="who">\(session.token.name) (\(session.token.role.rawValue))</span>
            <form method="post" action="/logout" class="inline"><input type="hidden" name="csrf" value="\(session.csrf)"><button>Log out</button></form></nav>
            """
        } ?? ""
        let html: HTML = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>\(title) · Belfry</title>
            <meta name="viewport" content="width=device-width, initial-scale=1"><link rel="stylesheet" href="/static/belfry.css"></head>
            <body>\(nav)<main>\(body)</main></body></html>
            """
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html.markup)))
    }

    private func asset(_ text: String, type: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.cacheControl] = "max-age=3600"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func redirect(_ location: String) -> Response {
        var headers = HTTPFields()
        headers[.location] = location
        return Response(status: .seeOther, headers: headers)
    }

    static func session(_ context: BelfryRequestContext, _ sessions: Sessions) throws -> Sessions.Session {
        guard let id = context.sessionID, let session = sessions.session(id) else { throw APIError(.unauthorized, "unauthorized", "log in") }
        return session
    }

    static func admin(_ session: Sessions.Session) throws {
        guard session.token.role == .admin else { throw APIError(.forbidden, "forbidden", "this token may read, not change") }
    }

    /// A POST whose `Origin` is another site's is refused (browsers send it with every form POST).
    static func sameOrigin(_ request: Request) throws {
        guard let origin = request.headers[.origin] else { return }
        guard let host = request.head.authority,
            origin == "http://\(host)" || origin == "https://\(host)"
        else { throw APIError(.forbidden, "forbidden", "a form of another site may not post here") }
    }

    static func cookie(_ request: Request, _ name: String) -> String? {
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0] == name { return String(parts[1]) }
            }
        }
        return nil
    }

    /// An `application/x-www-form-urlencoded` body.
    static func form(_ request: Request, _ context: BelfryRequestContext) async throws -> [String: String] {
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        var result: [String: String] = [:]
        for pair in String(buffer: body).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            if let key = parts.first { result[key] = parts.count > 1 ? parts[1] : "" }
        }
        return result
    }
}

/// Pages need a session: without one a page redirects to the login form, a form POST is refused.
struct SessionMiddleware: RouterMiddleware {
    typealias Context = BelfryRequestContext
    let sessions: Sessions

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let id = WebRoutes.cookie(request, Sessions.cookie), let session = sessions.session(id) else {
            if request.method == .get { return WebRoutes.redirect("/login") }
            return APIError(.forbidden, "forbidden", "log in first").response
        }
        var context = context
        context.sessionID = id
        context.token = session.token
        return try await next(request, context)
    }
}
