import ArgumentParser
import BelfryStore
import Foundation

/// `belfry nodes`: the daemons sharing a PostgreSQL database.
struct Nodes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the daemons (nodes) sharing the database, with their lease and running runs.",
        discussion: "A node whose lease is past is lost: another node takes its runs over once the lease has been expired for the task's kill_grace. A SQLite database has no nodes.")
    @OptionGroup var database: DatabaseOptions
    @Flag(help: "Print a JSON array.") var json = false

    func run() async throws {
        let nodes = try await database.open().nodes()
        if json {
            return JSONValue.array(nodes.map { node in
                .object([
                    ("name", .string(node.name)), ("id", .string(node.id)), ("host", .string(node.host)), ("pid", .int(Int64(node.pid))),
                    ("started_at", .string(rfc3339(node.startedAt))), ("lease_until", .string(rfc3339(node.leaseUntil))),
                    ("running", .int(Int64(node.running))),
                ])
            }).print()
        }
        guard !nodes.isEmpty else { return print(database.isShared ? "no nodes" : "no nodes: a SQLite database has one daemon at a time") }
        var rows = [["NAME", "ID", "HOST", "PID", "STARTED", "LEASE UNTIL", "RUNNING"]]
        for node in nodes {
            rows.append([node.name, String(node.id.prefix(8)), node.host, String(node.pid), rfc3339(node.startedAt), rfc3339(node.leaseUntil),
                         String(node.running)])
        }
        printTable(rows)
    }
}
