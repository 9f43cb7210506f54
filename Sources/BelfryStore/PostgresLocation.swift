import Foundation

/// A `postgres://` or `postgresql://` URL taken apart: user, password, host (or a Unix socket
/// directory, `?host=/run/postgresql` as libpq has it), port, database and `sslmode`. The
/// password may come instead from `$PGPASSWORD`, a password file, or systemd's credentials
/// (`$CREDENTIALS_DIRECTORY/database-password`). It is never part of `redacted`, which is what
/// Belfry shows, logs and hands to jobs.
public struct PostgresLocation: Sendable, Equatable {
    public enum SSLMode: String, Sendable {
        case disable, allow, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public var user: String
    public var password: String?
    /// A host name or address; nil with a Unix socket.
    public var host: String?
    /// The directory of the server's Unix socket.
    public var socketDirectory: String?
    public var port: Int
    public var database: String
    public var sslMode: SSLMode

    /// Whether `text` names a PostgreSQL database rather than a SQLite file.
    public static func isURL(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    /// Parses `text`; a missing password is looked for in `environment` (`PGPASSWORD`, then
    /// `$CREDENTIALS_DIRECTORY/database-password`) and in `passwordFile`. Errors never contain
    /// the password.
    public init(_ text: String, environment: [String: String] = ProcessInfo.processInfo.environment, passwordFile: String? = nil) throws(PostgresLocationError) {
        guard Self.isURL(text), let components = URLComponents(string: text) else {
            throw PostgresLocationError("not a postgres:// or postgresql:// URL: \(Self.redact(text))")
        }
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, last in last })
        for name in query.keys where !["sslmode", "host", "port", "user", "password", "dbname", "application_name", "connect_timeout"].contains(name) {
            throw PostgresLocationError("the database URL has an unknown parameter \"\(name)\" (known: sslmode, host, port, user, dbname)")
        }
        user = query["user"] ?? components.percentEncodedUser.flatMap { $0.removingPercentEncoding } ?? environment["PGUSER"] ?? environment["USER"] ?? "postgres"
        let hostParameter = query["host"]
        if let hostParameter, hostParameter.hasPrefix("/") {
            socketDirectory = hostParameter
        } else if let name = hostParameter ?? components.host, !name.isEmpty {
            host = name
        } else {
            socketDirectory = "/var/run/postgresql"
        }
        if let text = query["port"] {
            guard let value = Int(text), (1...65535).contains(value) else { throw PostgresLocationError("the database URL's port \"\(text)\" is not a port number") }
            port = value
        } else {
            port = components.port ?? 5432
        }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = query["dbname"] ?? (path.isEmpty ? user : path)
        guard let mode = SSLMode(rawValue: query["sslmode"] ?? "prefer") else {
            throw PostgresLocationError("the database URL's sslmode \"\(query["sslmode"] ?? "")\" is not one of disable, allow, prefer, require, verify-ca, verify-full")
        }
        sslMode = mode
        if let given = query["password"] ?? components.percentEncodedPassword.flatMap({ $0.removingPercentEncoding }) {
            password = given
        } else if let given = environment["PGPASSWORD"] {
            password = given
        } else if let file = passwordFile ?? environment["CREDENTIALS_DIRECTORY"].map({ $0 + "/database-password" }), FileManager.default.fileExists(atPath: file) {
            guard let contents = FileManager.default.contents(atPath: file) else {
                throw PostgresLocationError("cannot read the database password file \(file)")
            }
            password = String(decoding: contents, as: UTF8.self).trimmingCharacters(in: .newlines)
        } else if let file = passwordFile {
            throw PostgresLocationError("the database password file \(file) does not exist")
        }
    }

    /// The URL without its password: what Belfry shows, logs, and gives jobs as `BELFRY_DATABASE`.
    public var redacted: String {
        var text = "postgresql://\(user.addingPercentEncoding(withAllowedCharacters: .urlUserAllowed) ?? user)@"
        text += host.map { $0.contains(":") ? "[\($0)]" : $0 } ?? ""
        text += ":\(port)/\(database)"
        var parameters: [String] = []
        if let socketDirectory { parameters.append("host=\(socketDirectory)") }
        if sslMode != .prefer { parameters.append("sslmode=\(sslMode.rawValue)") }
        return parameters.isEmpty ? text : text + "?" + parameters.joined(separator: "&")
    }

    /// `text` with any password in it (`user:PASSWORD@`, `password=PASSWORD`) replaced by `***`.
    public static func redact(_ text: String) -> String {
        var result = text
        if let scheme = result.range(of: "://"), let at = result.range(of: "@", range: scheme.upperBound..<result.endIndex),
            let colon = result.range(of: ":", range: scheme.upperBound..<at.lowerBound)
        {
            result.replaceSubrange(colon.upperBound..<at.lowerBound, with: "***")
        }
        if let parameter = result.range(of: "password=") {
            let end = result[parameter.upperBound...].firstIndex(of: "&") ?? result.endIndex
            result.replaceSubrange(parameter.upperBound..<end, with: "***")
        }
        return result
    }
}

/// A database URL that cannot be used, said without its password.
public struct PostgresLocationError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}
