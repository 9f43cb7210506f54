import Foundation

/// Who may use the HTTP API: the tokens file, one token per line, `NAME ROLE TOKEN` (roles
/// `admin` and `read`; `#` starts a comment). The file holds secrets: it is created 0600 and
/// refused when other users can read it.
public struct HTTPTokens: Sendable {
    public enum Role: String, Sendable, CaseIterable {
        /// Reads and changes (activation, runs).
        case admin
        /// Reads only: every change is refused with 403.
        case read
    }

    public struct Token: Sendable {
        public var name: String
        public var role: Role
        fileprivate var secret: [UInt8]
    }

    public private(set) var tokens: [Token]

    public init(tokens: [(name: String, role: Role, secret: String)]) {
        self.tokens = tokens.map { Token(name: $0.name, role: $0.role, secret: Array($0.secret.utf8)) }
    }

    /// Reads `path`; errors name the file and line, never a token.
    public static func load(path: String) throws(HTTPSetupError) -> HTTPTokens {
        var status = stat()
        guard stat(path, &status) == 0 else { throw HTTPSetupError("cannot read the tokens file \(path): \(String(cString: strerror(errno)))") }
        guard status.st_mode & 0o077 == 0 else {
            throw HTTPSetupError("the tokens file \(path) can be read by other users (mode \(String(status.st_mode & 0o777, radix: 8))): chmod 600 \(path)")
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw HTTPSetupError("cannot read the tokens file \(path)") }
        var tokens: [(String, Role, String)] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let content = line.prefix { $0 != "#" }.trimmingCharacters(in: .whitespaces)
            guard !content.isEmpty else { continue }
            let fields = content.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard fields.count == 3 else {
                throw HTTPSetupError("\(path):\(index + 1): a token line is NAME ROLE TOKEN (found \(fields.count) field\(fields.count == 1 ? "" : "s"))")
            }
            guard let role = Role(rawValue: fields[1]) else {
                throw HTTPSetupError("\(path):\(index + 1): role \"\(fields[1])\" is not admin or read")
            }
            guard fields[2].utf8.count >= 16 else { throw HTTPSetupError("\(path):\(index + 1): the token is shorter than 16 characters") }
            guard !tokens.contains(where: { $0.0 == fields[0] }) else { throw HTTPSetupError("\(path):\(index + 1): the name \(fields[0]) is used twice") }
            tokens.append((fields[0], role, fields[2]))
        }
        return HTTPTokens(tokens: tokens.map { (name: $0.0, role: $0.1, secret: $0.2) })
    }

    /// A new random token: 32 bytes from the system's generator, as hex.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return "bf_" + (0..<4).map { _ in String(format: "%016llx", generator.next() as UInt64) }.joined()
    }

    /// Adds a token to the file (creating it 0600 when missing); returns the token.
    public static func add(name: String, role: Role, to path: String) throws(HTTPSetupError) -> String {
        guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." || $0 == "@" }), !name.isEmpty else {
            throw HTTPSetupError("a token's name is letters, digits, '-', '_', '.' and '@', not \"\(name)\"")
        }
        if FileManager.default.fileExists(atPath: path) {
            let existing = try load(path: path)
            guard !existing.tokens.contains(where: { $0.name == name }) else { throw HTTPSetupError("\(path) has a token named \(name) already") }
        }
        let token = generate()
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw HTTPSetupError("cannot write the tokens file \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let line = Array("\(name) \(role.rawValue) \(token)\n".utf8)
        guard write(fd, line, line.count) == line.count else { throw HTTPSetupError("cannot write the tokens file \(path)") }
        return token
    }

    /// The token `presented` is, if any. Every token is compared in full, in time that does not
    /// depend on where the bytes differ.
    public func authenticate(_ presented: String) -> Token? {
        let bytes = Array(presented.utf8)
        var found: Token?
        for token in tokens where Self.constantTimeEqual(token.secret, bytes) { found = token }
        return found
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}

/// What keeps the HTTP server from starting: the tokens file, the address, the TLS files; said
/// without any token.
public struct HTTPSetupError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
