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

    /// The slots of one trigger that came due, each with what becomes of it.
    public struct SlotClaim: Sendable {
        public var trigger: ScheduledTrigger
        public var outcomes: [(slot: Instant, outcome: SlotOutcome)]

        public init(trigger: ScheduledTrigger, outcomes: [(slot: Instant, outcome: SlotOutcome)]) {
            (self.trigger, self.outcomes) = (trigger, outcomes)
        }
    }

    /// A run created by a claim, to be launched now.
    public struct Launch: Sendable {
        public var slot: Instant
        public var runID: Int64
        public var origin: RunOrigin

        public init(slot: Instant, runID: Int64, origin: RunOrigin) {
            (self.slot, self.runID, self.origin) = (slot, runID, origin)
        }
    }

    /// Records the outcome of each slot and advances each trigger's watermark to
    /// `evaluatedThrough`, in one transaction synced to disk, before anything runs. Slots at or
    /// before a stored watermark, and slots that already have a run (another daemon, a restart),
    /// are left alone: each slot is recorded once. Returns, per claim, the runs to launch now.
    public func claimSlots(_ claims: [SlotClaim], evaluatedThrough watermark: Instant, at: Date) throws -> [[Launch]] {
        try pool.writeWithoutTransaction { db in
            // The database runs with synchronous = NORMAL (durable across crashes of the
            // process, not of the machine); a claim is synced so that after a power loss no slot
            // whose process started can be claimed again.
            try db.execute(sql: "PRAGMA synchronous = FULL")
            defer { try? db.execute(sql: "PRAGMA synchronous = NORMAL") }
            var result: [[Launch]] = []
            try db.inTransaction(.immediate) {
                let readWatermark = try db.cachedStatement(sql: "SELECT last_slot FROM watermark WHERE trigger_id = ?")
                let insert = try db.cachedStatement(sql: """
                    INSERT INTO run (task, "trigger", slot, origin, state, reason, queued_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (task, "trigger", slot) DO NOTHING
                    """)
                let advance = try db.cachedStatement(sql: """
                    INSERT INTO watermark (trigger_id, last_slot) VALUES (?, ?)
                    ON CONFLICT (trigger_id) DO UPDATE SET last_slot = max(last_slot, excluded.last_slot)
                    """)
                let now = milliseconds(at)
                for claim in claims {
                    let task = claim.trigger.task.fullName
                    let name = claim.trigger.trigger.name
                    let stored = try Int64.fetchOne(readWatermark, arguments: [claim.trigger.id])
                    var launches: [Launch] = []
                    for (slot, outcome) in claim.outcomes where stored.map({ slot.secondsSinceEpoch > $0 }) ?? true {
                        switch outcome {
                        case .run(let origin):
                            try insert.execute(arguments: [task, name, slot.secondsSinceEpoch, origin.rawValue, RunState.queued.rawValue, nil, now, nil])
                            if db.changesCount == 1 { launches.append(Launch(slot: slot, runID: db.lastInsertedRowID, origin: origin)) }
                        case .notRun(let state, let reason):
                            try insert.execute(arguments: [task, name, slot.secondsSinceEpoch, RunOrigin.scheduled.rawValue, state.rawValue, reason, now, now])
                        }
                    }
                    try advance.execute(arguments: [claim.trigger.id, watermark.secondsSinceEpoch])
                    result.append(launches)
                }
                return .commit
            }
            return result
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
