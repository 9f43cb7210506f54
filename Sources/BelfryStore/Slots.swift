import BelfryConfig
import BelfrySchedule
import Foundation
import GRDB

/// What becomes of a slot that came due.
public enum SlotOutcome: Hashable, Sendable {
    /// Run it (`scheduled` on time, `catchUp` for a missed slot).
    case run(RunOrigin)
    /// Recorded, not run: `missed` (downtime, deadline) or `skipped` (overlap, circuit).
    case notRun(RunState, reason: String)
}

/// An active trigger as the scheduler needs it.
public struct ScheduledTrigger: Sendable {
    public var id: Int64
    public var task: TaskDefinition
    public var trigger: TriggerDefinition
    /// When it was last activated (the anchor of a fixed rate without start_time).
    public var activatedAt: Instant
    /// The last slot evaluated; nil for a trigger never evaluated.
    public var watermark: Instant?
}

extension BelfryDatabase {
    /// Every active trigger with its task, anchor and watermark.
    public func activeTriggers() throws -> [ScheduledTrigger] {
        try pool.read { db in
            let decoder = JSONDecoder()
            var tasks: [Int64: TaskDefinition] = [:]
            let rows = try Row.fetchAll(db, sql: """
                SELECT tr.id, tr.task_id, t.definition, tr.definition, coalesce(tr.activated_at, tr.updated_at), w.last_slot
                FROM "trigger" tr JOIN task t ON t.id = tr.task_id LEFT JOIN watermark w ON w.trigger_id = tr.id
                WHERE tr.active ORDER BY tr.id
                """)
            return try rows.map { row in
                let taskID: Int64 = row[1]
                if tasks[taskID] == nil { tasks[taskID] = try decoder.decode(TaskDefinition.self, from: row[2] as Data) }
                return ScheduledTrigger(
                    id: row[0], task: tasks[taskID]!, trigger: try decoder.decode(TriggerDefinition.self, from: row[3] as Data),
                    activatedAt: Instant(secondsSinceEpoch: (row[4] as Int64) / 1000),
                    watermark: (row[5] as Int64?).map(Instant.init(secondsSinceEpoch:)))
            }
        }
    }

    /// Records the outcome of each slot and advances the trigger's watermark, in one
    /// transaction, before anything runs. Slots at or before the stored watermark, and slots that
    /// already have a run (another daemon, a restart), are left alone: each slot is recorded once.
    /// Returns the runs created to be launched now.
    public func claimSlots(
        _ outcomes: [(slot: Instant, outcome: SlotOutcome)], trigger: ScheduledTrigger, evaluatedThrough watermark: Instant, at: Date
    ) throws -> [(slot: Instant, runID: Int64, origin: RunOrigin)] {
        let task = trigger.task.fullName
        let name = trigger.trigger.name
        return try pool.write { db in
            let stored = try Int64.fetchOne(db, sql: "SELECT last_slot FROM watermark WHERE trigger_id = ?", arguments: [trigger.id])
            var launches: [(Instant, Int64, RunOrigin)] = []
            let insert = try db.cachedStatement(sql: """
                INSERT INTO run (task, "trigger", slot, origin, state, reason, queued_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (task, "trigger", slot) DO NOTHING
                """)
            for (slot, outcome) in outcomes where stored.map({ slot.secondsSinceEpoch > $0 }) ?? true {
                switch outcome {
                case .run(let origin):
                    try insert.execute(arguments: [task, name, slot.secondsSinceEpoch, origin.rawValue, RunState.queued.rawValue, nil, milliseconds(at), nil])
                    if db.changesCount == 1 { launches.append((slot, db.lastInsertedRowID, origin)) }
                case .notRun(let state, let reason):
                    try insert.execute(arguments: [task, name, slot.secondsSinceEpoch, RunOrigin.scheduled.rawValue, state.rawValue, reason, milliseconds(at), milliseconds(at)])
                }
            }
            try db.execute(sql: """
                INSERT INTO watermark (trigger_id, last_slot) VALUES (?, ?)
                ON CONFLICT (trigger_id) DO UPDATE SET last_slot = max(last_slot, excluded.last_slot)
                """, arguments: [trigger.id, watermark.secondsSinceEpoch])
            return launches
        }
    }
}

extension BelfryDatabase {
    /// Concurrency per queue, as deployed.
    public func queueLimits() throws -> [String: Int] {
        try pool.read { db in
            try Dictionary(Row.fetchAll(db, sql: "SELECT name, concurrency FROM queue").map { ($0[0] as String, $0[1] as Int) },
                           uniquingKeysWith: { a, _ in a })
        }
    }

    /// A run that a daemon that is gone left `queued` or `running`.
    public struct InterruptedRun: Sendable {
        public var id: Int64
        public var task: String
        public var trigger: String
        public var slot: Instant
        public var origin: RunOrigin
        /// Attempts it had started.
        public var attempts: Int
        /// The process of the attempt that was running, if any: its group may still be alive.
        public var orphanPID: Int32?
    }

    /// At start-up: runs of triggers left `queued` or `running` were interrupted (SPEC §4). Each
    /// is a system retry, not counted against the user's retries: its unfinished attempt is
    /// closed as interrupted and the run goes back to `queued`, to be resumed. A run interrupted
    /// more than `maxSystemRetries` times is recorded failed instead.
    public func interruptedRuns(maxSystemRetries: Int = 3, at: Date) throws -> [InterruptedRun] {
        try pool.write { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT id, task, "trigger", slot, origin, attempts, system_retries FROM run
                WHERE state IN ('queued', 'running') AND slot IS NOT NULL AND "trigger" IS NOT NULL
                """)
            var resumable: [InterruptedRun] = []
            for row in rows {
                let id: Int64 = row[0]
                let orphan = try Int32.fetchOne(db, sql: "SELECT pid FROM attempt WHERE run_id = ? AND finished_at IS NULL AND pid IS NOT NULL", arguments: [id])
                try db.execute(sql: "UPDATE attempt SET finished_at = ? WHERE run_id = ? AND finished_at IS NULL", arguments: [milliseconds(at), id])
                if (row[6] as Int) >= maxSystemRetries {
                    try db.execute(sql: """
                        UPDATE run SET state = 'failed', reason = 'interrupted \(maxSystemRetries + 1) times (daemon stopped)', finished_at = ?
                        WHERE id = ?
                        """, arguments: [milliseconds(at), id])
                    continue
                }
                try db.execute(sql: "UPDATE run SET state = 'queued', system_retries = system_retries + 1, reason = 'resumed after an interruption' WHERE id = ?",
                               arguments: [id])
                resumable.append(InterruptedRun(
                    id: id, task: row[1], trigger: row[2], slot: Instant(secondsSinceEpoch: row[3]),
                    origin: RunOrigin(rawValue: row[4]) ?? .scheduled, attempts: row[5], orphanPID: orphan))
            }
            return resumable
        }
    }
}
