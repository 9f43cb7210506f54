import BelfryStore
import Foundation
import NIOCore
import PostgresNIO

extension PostgresStore {
    public func export() async throws -> StoreContents {
        try await transaction { connection in
            try await connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", logger: self.logger)
            var tables: [(table: StoreTable, rows: [[StoreValue]])] = []
            for table in StoreTable.all {
                var rows: [[StoreValue]] = []
                let order = table.columns.prefix(2).map { "\"\($0.name)\"" }.joined(separator: ", ")
                for try await row in try await connection.query(
                    PostgresQuery(unsafeSQL: "SELECT \(table.columnList) FROM \(table.quotedName) ORDER BY \(order)"), logger: self.logger) {
                    let cells = row.makeRandomAccess()
                    rows.append(try table.columns.indices.map { index in
                        let cell = cells[index]
                        switch table.columns[index].kind {
                        case .integer: return try cell.decode(Int64?.self).map(StoreValue.integer) ?? .null
                        case .text: return try cell.decode(String?.self).map(StoreValue.text) ?? .null
                        case .blob: return try cell.decode(Data?.self).map(StoreValue.blob) ?? .null
                        case .boolean: return try cell.decode(Bool?.self).map(StoreValue.boolean) ?? .null
                        }
                    })
                }
                tables.append((table, rows))
            }
            return StoreContents(tables: tables)
        }
    }

    public func importContents(_ contents: StoreContents) async throws {
        let location = self.location
        try await transaction { connection in
            let used = try await connection.query("SELECT (SELECT count(*) FROM task) + (SELECT count(*) FROM run)", logger: self.logger).collect()
            guard try used.first?.decode(Int.self) == 0 else { throw StoreError.notEmpty(location: location) }
            for (table, rows) in contents.tables {
                let width = table.columns.count
                for start in stride(from: 0, to: rows.count, by: 1000) {
                    let batch = rows[start..<min(rows.count, start + 1000)]
                    var bindings = PostgresBindings(capacity: batch.count * width)
                    var tuples: [String] = []
                    for (offset, row) in batch.enumerated() {
                        tuples.append("(" + (1...width).map { "$\(offset * width + $0)" }.joined(separator: ", ") + ")")
                        for (value, column) in zip(row, table.columns) {
                            switch value {
                            case .null:
                                switch column.kind {  // a typed NULL, so that the server need not guess
                                case .integer: bindings.append(Int64?.none)
                                case .text: bindings.append(String?.none)
                                case .blob: bindings.append(ByteBuffer?.none)
                                case .boolean: bindings.append(Bool?.none)
                                }
                            case .integer(let integer): bindings.append(integer)
                            case .text(let text): bindings.append(text)
                            case .blob(let data): bindings.append(ByteBuffer(bytes: data))
                            case .boolean(let flag): bindings.append(flag)
                            }
                        }
                    }
                    try await connection.query(PostgresQuery(
                        unsafeSQL: "INSERT INTO \(table.quotedName) (\(table.columnList)) VALUES \(tuples.joined(separator: ", "))", binds: bindings),
                        logger: self.logger)
                }
                if let serial = table.serial {
                    try await connection.query(PostgresQuery(unsafeSQL: """
                        SELECT setval(pg_get_serial_sequence('\(table.quotedName)', '\(serial)'), coalesce((SELECT max(\(serial)) FROM \(table.quotedName)), 0) + 1, false)
                        """), logger: self.logger)
                }
            }
            try await Self.definitionsChanged(connection, logger: self.logger)
        }
    }
}
