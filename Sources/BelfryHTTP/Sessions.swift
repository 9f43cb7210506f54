import Foundation
import Synchronization

/// Browser sessions of the web pages: a token typed into the login form becomes a session
/// (a random id in an HttpOnly, SameSite=Strict cookie) that carries the token's name and
/// role, and a CSRF token that every form must send back. Kept in memory: a restart logs
/// everyone out. Failed logins are limited to 10 a minute.
final class Sessions: Sendable {
    struct Session: Sendable {
        var token: HTTPTokens.Token
        var csrf: String
        var expires: Date
    }

    private let sessions = Mutex<[String: Session]>([:])
    private let failures = Mutex<[Date]>([])
    static let lifetime: TimeInterval = 12 * 3600
    static let cookie = "belfry_session"

    /// A new session for `token`: its id.
    func open(_ token: HTTPTokens.Token, now: Date = Date()) -> String {
        let id = HTTPTokens.generate()
        sessions.withLock { all in
            all = all.filter { $0.value.expires > now }
            all[id] = Session(token: token, csrf: HTTPTokens.generate(), expires: now.addingTimeInterval(Self.lifetime))
        }
        return id
    }

    func session(_ id: String, now: Date = Date()) -> Session? {
        sessions.withLock { all in
            guard let session = all[id], session.expires > now else { return nil }
            return session
        }
    }

    func close(_ id: String) { _ = sessions.withLock { $0.removeValue(forKey: id) } }

    /// Whether another login may be tried now; records a failure when `failed`.
    func mayTryLogin(now: Date = Date()) -> Bool {
        failures.withLock { recent in
            recent = recent.filter { now.timeIntervalSince($0) < 60 }
            return recent.count < 10
        }
    }

    func loginFailed(now: Date = Date()) { failures.withLock { $0.append(now) } }
}
