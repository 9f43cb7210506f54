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

    /// Pretty-printed with two-space indentation (the command line's `--json`), or, with
    /// `pretty: false`, without any space (the HTTP API's answers: a page of 50 runs is 40 %
    /// smaller, and writing it took a fifth of the daemon's time per request).
    public func write(to bytes: inout [UInt8], pretty: Bool = true, indent: Int = 0) {
        switch self {
        case .string(let text): Self.writeString(text, to: &bytes)
        case .int(let value): Self.writeInteger(value, to: &bytes)
        case .number(let value): bytes.append(contentsOf: (value.isFinite ? String(format: "%.6g", value) : "null").utf8)
        case .bool(let value): bytes.append(contentsOf: (value ? "true" : "false").utf8)
        case .null: bytes.append(contentsOf: "null".utf8)
        case .object(let members):
            if members.isEmpty { return bytes.append(contentsOf: "{}".utf8) }
            bytes.append(UInt8(ascii: "{"))
            var first = true
            for (key, value) in members {
                Self.separate(first: first, pretty: pretty, indent: indent + 2, in: &bytes)
                first = false
                Self.writeString(key, to: &bytes)
                bytes.append(UInt8(ascii: ":"))
                if pretty { bytes.append(UInt8(ascii: " ")) }
                value.write(to: &bytes, pretty: pretty, indent: indent + 2)
            }
            Self.close(UInt8(ascii: "}"), pretty: pretty, indent: indent, in: &bytes)
        case .array(let items):
            if items.isEmpty { return bytes.append(contentsOf: "[]".utf8) }
            bytes.append(UInt8(ascii: "["))
            var first = true
            for item in items {
                Self.separate(first: first, pretty: pretty, indent: indent + 2, in: &bytes)
                first = false
                item.write(to: &bytes, pretty: pretty, indent: indent + 2)
            }
            Self.close(UInt8(ascii: "]"), pretty: pretty, indent: indent, in: &bytes)
        }
    }

    /// What goes before a member or an item: a comma unless it is the first; when pretty, a new
    /// line indented.
    private static func separate(first: Bool, pretty: Bool, indent: Int, in bytes: inout [UInt8]) {
        if !first { bytes.append(UInt8(ascii: ",")) }
        guard pretty else { return }
        bytes.append(UInt8(ascii: "\n"))
        bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent))
    }

    private static func close(_ bracket: UInt8, pretty: Bool, indent: Int, in bytes: inout [UInt8]) {
        if pretty {
            bytes.append(UInt8(ascii: "\n"))
            bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent))
        }
        bytes.append(bracket)
    }

    /// Decimal digits, without making a `String` first.
    private static func writeInteger(_ value: Int64, to bytes: inout [UInt8]) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { digits in
            repeat {
                digits[19 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: digits[(20 - count)...]))
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
        bytes.withUnsafeBytes(writeToStandardOutput)
    }
}

/// Writes all of `bytes` to standard output, unbuffered. Not through `FileHandle.standardOutput`:
/// its `write` stops the program when the write fails (a full disk), and making its `Data` from a
/// sequence casts dynamically, a walk over all the program's protocol conformances (a short
/// command's 2 %). An output that cannot be written ends the process with one line and status 1.
public func writeToStandardOutput(_ bytes: UnsafeRawBufferPointer) {
    fflush(nil)  // lines `puts` holds go first
    if let failure = writeAll(1, bytes), failure != EPIPE { standardOutputFailed(failure) }  // EPIPE: `| head` has read what it wanted
}

public func writeToStandardOutput(_ text: String) {
    var text = text
    text.withUTF8 { writeToStandardOutput(UnsafeRawBufferPointer($0)) }
}

/// Ends the process when standard output cannot take what a command printed (`error`: the
/// `errno` of the failed write or flush): the command fails rather than leave a shortened output
/// behind a success.
public func standardOutputFailed(_ error: Int32) -> Never {
    writeToStandardError("belfry: cannot write to standard output: \(error == 0 ? "nothing was written" : String(cString: strerror(error)))\n")
    exit(1)
}

/// Writes `text` to standard error. One that cannot take it is let be: there is nowhere left to
/// say so (`FileHandle.standardError.write` stops the program instead).
public func writeToStandardError(_ text: String) {
    var text = text
    text.withUTF8 { _ = writeAll(2, UnsafeRawBufferPointer($0)) }
}

/// Writes all of `bytes` to `descriptor`: nil once written, else the `errno` of the write that
/// failed (0 for a write that took nothing).
private func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32? {
    var offset = 0
    while offset < bytes.count {
        let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
        if written < 0 && errno == EINTR { continue }
        if written <= 0 { return written < 0 ? errno : 0 }
        offset += written
    }
    return nil
}
