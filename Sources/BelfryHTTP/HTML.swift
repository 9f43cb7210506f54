import Foundation

/// HTML built as text, every value from outside (jobs, definitions, the query) escaped on the
/// way in: `HTML` holds markup, a `String` interpolated into it is text.
public struct HTML: Sendable, ExpressibleByStringInterpolation, CustomStringConvertible {
    public private(set) var markup: String

    public init(stringLiteral value: String) { markup = value }
    public init(markup: String) { self.markup = markup }

    public init(stringInterpolation: Interpolation) { markup = stringInterpolation.markup }

    public var description: String { markup }

    public struct Interpolation: StringInterpolationProtocol {
        var markup = ""

        public init(literalCapacity: Int, interpolationCount: Int) { markup.reserveCapacity(literalCapacity * 2) }
        public mutating func appendLiteral(_ literal: String) { markup += literal }
        /// Text: escaped.
        public mutating func appendInterpolation(_ text: String) { markup += HTML.escape(text) }
        public mutating func appendInterpolation(_ value: Int) { markup += String(value) }
        public mutating func appendInterpolation(_ value: Int64) { markup += String(value) }
        /// Markup built elsewhere (itself from escaped parts).
        public mutating func appendInterpolation(_ html: HTML) { markup += html.markup }
        public mutating func appendInterpolation(_ parts: [HTML]) { for part in parts { markup += part.markup } }
    }

    /// `&`, `<`, `>`, `"` and `'` as entities: safe in text and in quoted attributes.
    public static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.append(character)
            }
        }
        return result
    }

    /// A path segment or query value, percent-encoded (then escaped where it lands in HTML).
    public static func component(_ text: String) -> String {
        let allowed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"
        var result = ""
        for byte in text.utf8 {
            if allowed.utf8.contains(byte) { result.append(Character(UnicodeScalar(byte))) } else { result += String(format: "%%%02X", byte) }
        }
        return result
    }
}
