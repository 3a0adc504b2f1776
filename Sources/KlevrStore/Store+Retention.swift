import Foundation
import KlevrCore
import SQLKit

/// What the retention sweep removes, and what it removed.
public struct RetentionPolicy: Sendable, Equatable {
    /// Finished runs (with their output) that ended before this time go, unless their task still has
    /// unfinished runs; so do finished webhook deliveries (with their attempts) queued before it, and one-off
    /// tasks created before it that have no runs left. Nil keeps them all.
    public var runsBefore: Int64?
    /// Events (the event and audit logs) before this time go, once the webhook queue has passed them. Nil
    /// keeps them all.
    public var eventsBefore: Int64?

    public init(runsBefore: Int64?, eventsBefore: Int64?) {
        self.runsBefore = runsBefore
        self.eventsBefore = eventsBefore
    }
}

/// Rows removed by a retention sweep.
public struct RetentionCounts: Sendable, Equatable {
    public var runs = 0
    public var logChunks = 0
    public var tasks = 0
    public var events = 0
    public var deliveries = 0
    public var sessions = 0

    public init() {}

    public var total: Int { runs + logChunks + tasks + events + deliveries + sessions }
}

extension Store {
    /// Removes what ``RetentionPolicy`` lets go, and sessions that expired, in transactions of at most
    /// `batch` runs, tasks, events or deliveries each (a large backlog never holds a long lock: other
    /// writers go between two batches). Running it again removes nothing more; several managers on one
    /// database may run it at once.
    public func prune(_ policy: RetentionPolicy, now: Int64, batch: Int = 500) async throws -> RetentionCounts {
        var counts = RetentionCounts()
        let batch = max(1, batch)
        counts.sessions = try await database.transaction { db in
            try await db.raw("DELETE FROM sessions WHERE expires_at <= \(bind: now) RETURNING token_hash").all().count
        }
        if let before = policy.runsBefore {
            while true {
                let (runs, chunks) = try await pruneRuns(finishedBefore: before, limit: batch)
                counts.runs += runs
                counts.logChunks += chunks
                if runs < batch { break }
                await Task.yield()
            }
            while true {
                let deliveries = try await pruneDeliveries(createdBefore: before, limit: batch)
                counts.deliveries += deliveries
                if deliveries < batch { break }
                await Task.yield()
            }
            while true {
                let tasks = try await pruneTasks(createdBefore: before, limit: batch)
                counts.tasks += tasks
                if tasks < batch { break }
                await Task.yield()
            }
        }
        if let before = policy.eventsBefore {
            while true {
                let events = try await pruneEvents(before: before, limit: batch)
                counts.events += events
                if events < batch { break }
                await Task.yield()
            }
        }
        return counts
    }

    /// Statuses of runs that have ended, as SQL literals (from the enum, never from input).
    static var terminalStatusList: String {
        RunStatus.allCases.filter(\.isTerminal).map { "'\($0.rawValue)'" }.joined(separator: ", ")
    }

    static var unfinishedStatusList: String {
        RunStatus.allCases.filter { !$0.isTerminal }.map { "'\($0.rawValue)'" }.joined(separator: ", ")
    }

    /// One batch of finished runs whose task has no unfinished run (a rollout or a recurring task's
    /// overlap check still counts them), with their output. Returns the runs and chunks removed.
    func pruneRuns(finishedBefore before: Int64, limit: Int) async throws -> (runs: Int, chunks: Int) {
        try await database.transaction { db in
            let ids = try await db.raw(
                """
                SELECT r.id FROM runs r WHERE r.created_at < \(bind: before) AND r.finished_at < \(bind: before)
                AND r.status IN (\(unsafeRaw: Self.terminalStatusList))
                AND NOT EXISTS (SELECT 1 FROM runs o WHERE o.task_id = r.task_id AND o.status IN (\(unsafeRaw: Self.unfinishedStatusList)))
                ORDER BY r.created_at LIMIT \(bind: limit)
                """
            ).all().map { try $0.decode(column: "id", as: String.self) }
            guard !ids.isEmpty else { return (0, 0) }
            let chunks = try await db.raw("DELETE FROM run_logs WHERE run_id IN (\(binds: ids)) RETURNING seq").all().count
            let runs = try await db.raw("DELETE FROM runs WHERE id IN (\(binds: ids)) RETURNING id").all().count
            return (runs, chunks)
        }
    }

    /// One batch of delivered or failed webhook deliveries queued before `before`, with their attempts
    /// (pending ones stay, however old: they are still being tried).
    func pruneDeliveries(createdBefore before: Int64, limit: Int) async throws -> Int {
        try await database.transaction { db in
            let ids = try await db.raw(
                """
                SELECT id FROM webhook_deliveries WHERE status IN ('succeeded', 'failed') AND created_at < \(bind: before)
                ORDER BY created_at LIMIT \(bind: limit)
                """
            ).all().map { try $0.decode(column: "id", as: String.self) }
            guard !ids.isEmpty else { return 0 }
            try await db.raw("DELETE FROM webhook_attempts WHERE delivery_id IN (\(binds: ids))").run()
            return try await db.raw("DELETE FROM webhook_deliveries WHERE id IN (\(binds: ids)) RETURNING id").all().count
        }
    }

    /// One batch of one-off tasks (no cron) created before `before` whose runs are all gone, with the
    /// callback webhook each may have had and its deliveries.
    func pruneTasks(createdBefore before: Int64, limit: Int) async throws -> Int {
        try await database.transaction { db in
            let ids = try await db.raw(
                """
                SELECT t.id FROM tasks t WHERE t.created_at < \(bind: before) AND t.cron IS NULL
                AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.task_id = t.id)
                ORDER BY t.created_at LIMIT \(bind: limit)
                """
            ).all().map { try $0.decode(column: "id", as: String.self) }
            guard !ids.isEmpty else { return 0 }
            try await db.raw(
                """
                DELETE FROM webhook_attempts WHERE delivery_id IN
                (SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE w.task_id IN (\(binds: ids)))
                """
            ).run()
            try await db.raw(
                "DELETE FROM webhook_deliveries WHERE webhook_id IN (SELECT id FROM webhooks WHERE task_id IN (\(binds: ids)))"
            ).run()
            try await db.raw("DELETE FROM webhooks WHERE task_id IN (\(binds: ids))").run()
            return try await db.raw("DELETE FROM tasks WHERE id IN (\(binds: ids)) RETURNING id").all().count
        }
    }

    /// One batch of events before `before` that the webhook queue has passed (its cursor is beyond them).
    func pruneEvents(before: Int64, limit: Int) async throws -> Int {
        try await database.transaction { db in
            let ids = try await db.raw(
                """
                SELECT id FROM event_log WHERE at < \(bind: before)
                AND id <= (SELECT COALESCE(MAX(event_id), 0) FROM webhook_cursor WHERE name = 'events')
                ORDER BY id LIMIT \(bind: limit)
                """
            ).all().map { try $0.decode(column: "id", as: Int64.self) }
            guard !ids.isEmpty else { return 0 }
            return try await db.raw("DELETE FROM event_log WHERE id IN (\(binds: ids)) RETURNING id").all().count
        }
    }
}
