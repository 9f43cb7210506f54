import ArgumentParser
import BelfryListings
import BelfryStore
import Foundation

/// `belfry nodes`: the daemons sharing a PostgreSQL database.
struct Nodes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodes",
        abstract: "List the daemons (nodes) sharing the database, with their lease and running runs.",
        discussion: "A node whose lease is past is lost: another node takes its runs over once the lease has been expired for the task's kill_grace. A SQLite database has no nodes.")
    @OptionGroup var database: DatabaseOptions
    @Flag(help: "Print a JSON array.") var json = false

    func run() async throws {
        let nodes = try await database.open(readOnly: true).nodes()
        if json {
            return JSONValue.array(nodes.map(Listing.node)).print()
        }
        guard !nodes.isEmpty else { return printLine(database.isShared ? "no nodes" : "no nodes: a SQLite database has one daemon at a time") }
        var rows = [["NAME", "ID", "HOST", "PID", "STARTED", "LEASE UNTIL", "RUNNING"]]
        for node in nodes {
            rows.append([node.name, String(node.id.prefix(8)), node.host, String(node.pid), rfc3339(node.startedAt), rfc3339(node.leaseUntil),
                         String(node.running)])
        }
        printTable(rows)
    }
}

/// `belfry copy-store --from A --to B`: moves a store to another backend or place.
struct CopyStore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "copy-store",
        abstract: "Copy deployment, activation state, watermarks, circuit breakers and run history from one database to another (SQLite or PostgreSQL).",
        discussion: "The target must be empty (no task, no run): it is filled in one transaction, all or nothing. Stop the daemons on the source first: runs recorded after the copy is read are not copied. Attempt logs stay where they are; their paths are copied.")
    @Option(help: "The database to copy from: a SQLite file or a postgres:// URL.") var from: String
    @Option(help: "The database to copy to: a SQLite file or a postgres:// URL.") var to: String
    @Option(help: "A file holding the PostgreSQL password (for either URL).") var databasePasswordFile: String?

    func run() async throws {
        let source = try await DatabaseOptions.open(from, passwordFile: databasePasswordFile)
        let target = try await DatabaseOptions.open(to, passwordFile: databasePasswordFile)
        let started = Date()
        do {
            let contents = try await source.export()
            writeToStandardError("read \(contents.rowCount) rows (\(contents.runCount) runs) from \(source.location)\n")
            try await target.importContents(contents)
            printLine("copied \(contents.rowCount) rows (\(contents.runCount) runs) from \(source.location) to \(target.location) in "
                  + String(format: "%.1f s", Date().timeIntervalSince(started)))
        } catch {
            throw CommandFailure("copy-store failed, nothing was written to \(target.location): \(error)")
        }
    }
}
