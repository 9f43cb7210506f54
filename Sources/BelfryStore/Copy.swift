import Foundation
import GRDB

extension BelfryDatabase {
    public func export() throws -> StoreContents {
        try pool.read { db in
            StoreContents(tables: try StoreTable.all.map { table in
                var rows: [[StoreValue]] = []
                let order = table.columns.prefix(2).map { "\"\($0.name)\"" }.joined(separator: ", ")
                let cursor = try Row.fetchCursor(db, sql: "SELECT \(table.columnList) FROM \(table.quotedName) ORDER BY \(order)")
                while let row = try cursor.next() {
                    rows.append(table.columns.indices.map { index in
                        let value: DatabaseValue = row[index]
                        switch value.storage {
                        case .null: return .null
                        case .int64(let integer): return table.columns[index].kind == .boolean ? .boolean(integer != 0) : .integer(integer)
                        case .double(let double): return .integer(Int64(double))
                        case .string(let text): return .text(text)
                        case .blob(let data): return .blob(data)
                        }
                    })
                }
                return (table, rows)
            })
        }
    }

    public func importContents(_ contents: StoreContents) throws {
        try pool.write { db in
            let used = try Int.fetchOne(db, sql: "SELECT (SELECT count(*) FROM task) + (SELECT count(*) FROM run)") ?? 0
            guard used == 0 else { throw StoreError.notEmpty(location: path) }
            for (table, rows) in contents.tables {
                let statement = try db.makeStatement(sql: """
                    INSERT INTO \(table.quotedName) (\(table.columnList)) VALUES (\(table.columns.map { _ in "?" }.joined(separator: ", ")))
                    """)
                for row in rows {
                    try statement.execute(arguments: StatementArguments(row.map { value -> (any DatabaseValueConvertible)? in
                        switch value {
                        case .null: nil
                        case .integer(let integer): integer
                        case .text(let text): text
                        case .blob(let data): data
                        case .boolean(let flag): flag
                        }
                    }))
                }
            }
        }
    }
}
