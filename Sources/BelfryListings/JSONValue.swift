import Foundation

/// A JSON value for listings: written straight to bytes, because `JSONEncoder` took 40 % of
/// `trigger list --json` over 100,000 triggers. Keys keep the order they are given in.
public enum JSONValue: Sendable {
    case string(String)
    case int(Int64)
    case number(Double)
    case bool(Bool)
    case null
    case object([(String, JSONValue)])
    case array([JSONValue])

    public static func optional(_ text: String?) -> JSONValue { text.map(JSONValue.string) ?? .null }

    /// Pretty-printed with two-space indentation.
    public func write(to bytes: inout [UInt8], indent: Int = 0) {
        switch self {
        case .string(let text): Self.writeString(text, to: &bytes)
        case .int(let value): bytes.append(contentsOf: String(value).utf8)
        case .number(let value): bytes.append(contentsOf: (value.isFinite ? String(format: "%.6g", value) : "null").utf8)
        case .bool(let value): bytes.append(contentsOf: (value ? "true" : "false").utf8)
        case .null: bytes.append(contentsOf: "null".utf8)
        case .object(let members):
            if members.isEmpty { return bytes.append(contentsOf: "{}".utf8) }
            bytes.append(UInt8(ascii: "{"))
            for (index, (key, value)) in members.enumerated() {
                bytes.append(contentsOf: (index == 0 ? "\n" : ",\n").utf8)
                bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent + 2))
                Self.writeString(key, to: &bytes)
                bytes.append(contentsOf: ": ".utf8)
                value.write(to: &bytes, indent: indent + 2)
            }
            bytes.append(UInt8(ascii: "\n"))
            bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent))
            bytes.append(UInt8(ascii: "}"))
        case .array(let items):
            if items.isEmpty { return bytes.append(contentsOf: "[]".utf8) }
            bytes.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                bytes.append(contentsOf: (index == 0 ? "\n" : ",\n").utf8)
                bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent + 2))
                item.write(to: &bytes, indent: indent + 2)
            }
            bytes.append(UInt8(ascii: "\n"))
            bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent))
            bytes.append(UInt8(ascii: "]"))
        }
    }

    /// A JSON string with the escapes RFC 8259 requires. The runs between escapes are copied
    /// whole: a byte at a time, strings were 6 % of the daemon's CPU serving `GET /api/v1/runs`.
    private static func writeString(_ text: String, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { utf8 in
            var start = 0
            for index in utf8.indices {
                let byte = utf8[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<index]))
                start = index + 1
                switch byte {
                case UInt8(ascii: "\""): bytes.append(contentsOf: "\\\"".utf8)
                case UInt8(ascii: "\\"): bytes.append(contentsOf: "\\\\".utf8)
                case UInt8(ascii: "\n"): bytes.append(contentsOf: "\\n".utf8)
                case UInt8(ascii: "\r"): bytes.append(contentsOf: "\\r".utf8)
                case UInt8(ascii: "\t"): bytes.append(contentsOf: "\\t".utf8)
                default:
                    let hex = String(byte, radix: 16)
                    bytes.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).utf8)
                }
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start...]))
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// Prints the value and a newline on standard output.
    public func print() {
        var bytes: [UInt8] = []
        write(to: &bytes)
        bytes.append(UInt8(ascii: "\n"))
        FileHandle.standardOutput.write(Data(bytes))
    }
}
