import Foundation

/// One column's value as both backends store it.
public enum StoreValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case text(String)
    case blob(Data)
    case boolean(Bool)
}

/// A table both backends hold with the same name and columns, in the order a copy fills them
/// (parents before children). `belfry copy-store` moves a store through these.
public struct StoreTable: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case integer, text, blob, boolean
    }

    public var name: String
    public var columns: [(name: String, kind: Kind)]
    /// Whose largest value the id sequence continues from after a copy (PostgreSQL's bigserial).
    public var serial: String?

    public static func == (a: StoreTable, b: StoreTable) -> Bool { a.name == b.name }
    public func hash(into hasher: inout Hasher) { hasher.combine(name) }

    /// The column list, quoted, for SQL.
    public var columnList: String { columns.map { "\"\($0.name)\"" }.joined(separator: ", ") }
    public var quotedName: String { "\"\(name)\"" }

    /// Every table a copy moves, in order.
    public static let all: [StoreTable] = [
        StoreTable(name: "environment", columns: [("name", .text), ("description", .text), ("file", .text), ("source_hash", .text), ("updated_at", .integer)]),
        StoreTable(name: "queue", columns: [("name", .text), ("concurrency", .integer)]),
        StoreTable(name: "task", columns: [("id", .integer), ("name", .text), ("environment", .text), ("definition", .blob), ("updated_at", .integer)],
                   serial: "id"),
        StoreTable(name: "trigger", columns: [
            ("id", .integer), ("task_id", .integer), ("name", .text), ("kind", .text), ("schedule", .text), ("timezone", .text), ("dst", .text),
            ("interval_seconds", .integer), ("start_time", .integer), ("definition", .blob), ("active", .boolean), ("activated_at", .integer),
            ("owner", .text), ("updated_by", .text), ("updated_at", .integer),
        ], serial: "id"),
        StoreTable(name: "watermark", columns: [("trigger_id", .integer), ("last_slot", .integer)]),
        StoreTable(name: "circuit_breaker", columns: [("task", .text), ("state", .text), ("consecutive_failures", .integer), ("opened_at", .integer)]),
        StoreTable(name: "deploy", columns: [
            ("id", .integer), ("owner", .text), ("deployed_at", .integer), ("added", .integer), ("changed", .integer), ("deleted", .integer),
            ("unchanged", .integer),
        ], serial: "id"),
        StoreTable(name: "run", columns: [
            ("id", .integer), ("task", .text), ("trigger", .text), ("slot", .integer), ("origin", .text), ("state", .text), ("reason", .text),
            ("attempts", .integer), ("system_retries", .integer), ("exit_code", .integer), ("queued_at", .integer), ("started_at", .integer),
            ("finished_at", .integer), ("command_used", .text), ("inputs", .text),
        ], serial: "id"),
        StoreTable(name: "attempt", columns: [
            ("run_id", .integer), ("number", .integer), ("started_at", .integer), ("finished_at", .integer), ("pid", .integer), ("exit_code", .integer),
            ("signal", .integer), ("timed_out", .boolean), ("output_tail", .blob), ("log_path", .text),
        ]),
        StoreTable(name: "step", columns: [("run_id", .integer), ("name", .text), ("exit_code", .integer), ("stdout", .blob), ("finished_at", .integer)]),
        StoreTable(name: "run_stats", columns: [
            ("task", .text), ("hour", .integer), ("runs", .integer), ("succeeded", .integer), ("attempts", .integer), ("retried", .integer),
            ("durations", .blob),
        ]),
    ]
}

/// Everything a store holds, table by table, for `belfry copy-store`.
public struct StoreContents: Sendable {
    public var tables: [(table: StoreTable, rows: [[StoreValue]])]

    public init(tables: [(table: StoreTable, rows: [[StoreValue]])]) { self.tables = tables }

    /// Rows in all, and runs.
    public var rowCount: Int { tables.reduce(0) { $0 + $1.rows.count } }
    public var runCount: Int { tables.first { $0.table.name == "run" }?.rows.count ?? 0 }
}
