import BelfryConfig
import Foundation
import GRDB

/// What a deploy did, trigger by trigger (`ENV.TASK TRIGGER`).
public struct DeploySummary: Hashable, Sendable, Codable {
    public var added: [String] = []
    public var changed: [String] = []
    public var deleted: [String] = []
    public var unchanged = 0
    /// Active and inactive triggers after the deploy.
    public var active = 0
    public var inactive = 0

    package init() {}
}

extension BelfryDatabase {
    /// Replaces the deployed definitions with `definitions` in one transaction (SPEC §2): new
    /// triggers start active iff `auto_activate`; existing ones keep their activation state;
    /// triggers no longer defined are deleted (their run history stays). Records who and when.
    @discardableResult
    public func deploy(_ definitions: Definitions, owner: String, now: Date = Date()) throws -> DeploySummary {
        let at = milliseconds(now)
        // Files deployed before with the same bytes hold the same definitions: only the others
        // are encoded (on every core) for comparison, which is most of a large deploy's work.
        let deployedHashes = try pool.read { db in
            try Dictionary(Row.fetchAll(db, sql: "SELECT name, source_hash FROM environment").map { ($0[0] as String, $0[1] as String) },
                           uniquingKeysWith: { a, _ in a })
        }
        let changedTasks = definitions.environments.filter { deployedHashes[$0.name] != $0.sourceHash }.flatMap(\.tasks)
        let encoded = Dictionary(uniqueKeysWithValues: zip(changedTasks.map(\.fullName), try Self.encode(changedTasks)))
        return try pool.write { db in
            let deployed = try Self.deployed(db)
            let plan = try DeployPlan(definitions, deployed: deployed, encoded: encoded)

            let upsertEnvironment = try db.cachedStatement(sql: """
                INSERT INTO environment (name, description, file, source_hash, updated_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (name) DO UPDATE SET description = excluded.description, file = excluded.file,
                  source_hash = excluded.source_hash, updated_at = excluded.updated_at
                """)
            for environment in plan.environments {
                try upsertEnvironment.execute(arguments: [environment.name, environment.description, environment.file, environment.sourceHash, at])
            }
            var taskIDs = deployed.tasks.mapValues(\.id)
            let insertTask = try db.cachedStatement(sql: "INSERT INTO task (name, environment, definition, updated_at) VALUES (?, ?, ?, ?)")
            for task in plan.newTasks {
                try insertTask.execute(arguments: [task.name, task.environment, task.definition, at])
                taskIDs[task.name] = db.lastInsertedRowID
            }
            let updateTask = try db.cachedStatement(sql: "UPDATE task SET environment = ?, definition = ?, updated_at = ? WHERE id = ?")
            for task in plan.changedTasks { try updateTask.execute(arguments: [task.environment, task.definition, at, task.id]) }
            let insertTrigger = try db.cachedStatement(sql: """
                INSERT INTO "trigger" (task_id, name, kind, schedule, timezone, dst, interval_seconds, start_time,
                  definition, active, activated_at, owner, updated_by, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            for trigger in plan.newTriggers {
                try insertTrigger.execute(arguments: [taskIDs[trigger.task], trigger.name] + trigger.columns.arguments + [
                    trigger.definition, trigger.active, trigger.active ? at : nil, owner, owner, at,
                ])
            }
            let updateTrigger = try db.cachedStatement(sql: """
                UPDATE "trigger" SET kind = ?, schedule = ?, timezone = ?, dst = ?, interval_seconds = ?, start_time = ?,
                  definition = ?, owner = ?, updated_by = ?, updated_at = ?
                WHERE id = ?
                """)
            for trigger in plan.changedTriggers {
                try updateTrigger.execute(arguments: trigger.columns.arguments + [trigger.definition, owner, owner, at, trigger.id])
            }
            for id in plan.deletedTriggers { try db.execute(sql: "DELETE FROM \"trigger\" WHERE id = ?", arguments: [id]) }
            for id in plan.deletedTasks { try db.execute(sql: "DELETE FROM task WHERE id = ?", arguments: [id]) }
            let environments = definitions.environments.map(\.name)
            try db.execute(
                sql: "DELETE FROM environment WHERE name NOT IN (SELECT value FROM json_each(?))",
                arguments: [String(decoding: try JSONEncoder().encode(environments), as: UTF8.self)])
            try db.execute(sql: "DELETE FROM queue")
            for (name, concurrency) in definitions.queues {
                try db.execute(sql: "INSERT INTO queue (name, concurrency) VALUES (?, ?)", arguments: [name, concurrency])
            }
            let summary = plan.summary
            try db.execute(
                sql: "INSERT INTO deploy (owner, deployed_at, added, changed, deleted, unchanged) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [owner, at, summary.added.count, summary.changed.count, summary.deleted.count, summary.unchanged])
            return summary
        }
    }

    public func deployPreview(_ definitions: Definitions) throws -> DeploySummary {
        try pool.read { db in try DeployPlan(definitions, deployed: Self.deployed(db), encoded: [:]).summary }
    }

    private static func deployed(_ db: Database) throws -> DeployPlan.Deployed {
        var deployed = DeployPlan.Deployed()
        for row in try Row.fetchAll(db, sql: "SELECT name, source_hash FROM environment") { deployed.hashes[row[0]] = row[1] }
        for row in try Row.fetchAll(db, sql: "SELECT id, name, definition FROM task") { deployed.tasks[row[1]] = (row[0], row[2]) }
        for row in try Row.fetchAll(db, sql: """
            SELECT tr.id, t.name || ' ' || tr.name, tr.definition, tr.active FROM "trigger" tr JOIN task t ON t.id = tr.task_id
            """) {
            deployed.triggers[row[1]] = (row[0], row[2], row[3])
        }
        return deployed
    }

    /// When the deployed definitions came from exactly these files with these bytes (`file →
    /// fingerprint`, see `DefinitionLoader.fingerprints`), a deploy would change nothing: records
    /// it and returns its summary without reading the files. Nil: the files differ, deploy them.
    /// (Deleting a trigger by hand forgets its file's fingerprint, so that a deploy restores it.)
    public func deployedFingerprints() throws -> [String: String] {
        try pool.read(Self.deployedFingerprints)
    }

    /// File → fingerprint of what is deployed; a file two environments came from has "".
    private static func deployedFingerprints(_ db: Database) throws -> [String: String] {
        try Dictionary(
            Row.fetchAll(db, sql: "SELECT file, source_hash FROM environment").map { ($0[0] as String, $0[1] as String) },
            uniquingKeysWith: { _, _ in "" })
    }

    public func deployUnchanged(fingerprints: [String: String], owner: String, now: Date = Date()) throws -> DeploySummary? {
        try pool.write { db in
            let deployed = try Self.deployedFingerprints(db)
            guard !deployed.isEmpty, deployed == fingerprints else { return nil }
            var summary = DeploySummary()
            if let row = try Row.fetchOne(db, sql: #"SELECT count(*), coalesce(sum(active), 0) FROM "trigger""#) {
                summary.unchanged = row[0]
                summary.active = row[1]
                summary.inactive = summary.unchanged - summary.active
            }
            try db.execute(
                sql: "INSERT INTO deploy (owner, deployed_at, added, changed, deleted, unchanged) VALUES (?, ?, 0, 0, 0, ?)",
                arguments: [owner, milliseconds(now), summary.unchanged])
            return summary
        }
    }

    /// Each task (without its triggers) and each of its triggers as JSON with sorted keys, so
    /// that an unchanged definition encodes to the same bytes. Encoding dominates a large
    /// deploy, so it runs on every core before the transaction starts.
    package static func encode(_ tasks: [TaskDefinition]) throws -> [(task: Data, triggers: [Data])] {
        final class Chunk: @unchecked Sendable {
            var result: Result<[(Data, [Data])], any Error> = .success([])
        }
        let chunkCount = min(tasks.count, 4 * ProcessInfo.processInfo.activeProcessorCount)
        guard chunkCount > 0 else { return [] }
        let chunks = (0..<chunkCount).map { _ in Chunk() }
        DispatchQueue.concurrentPerform(iterations: chunkCount) { chunk in
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            let range = (tasks.count * chunk / chunkCount)..<(tasks.count * (chunk + 1) / chunkCount)
            chunks[chunk].result = Result {
                try tasks[range].map { task in
                    var bare = task
                    bare.triggers = []
                    return (try encoder.encode(bare), try task.triggers.map { try encoder.encode($0) })
                }
            }
        }
        return try chunks.flatMap { try $0.result.get() }
    }
}
