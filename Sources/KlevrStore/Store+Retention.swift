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
    /// `batch` rows each (runs, tasks, events, deliveries; a run's output goes first, `batch` × 10 chunks at
    /// a time), so that a large backlog never holds a long lock: other writers go between two batches.
    /// Running it again removes nothing more. `keepGoing` is asked between batches (a stopping manager
    /// stops the sweep there; the next sweep goes on).
    public func prune(
        _ policy: RetentionPolicy, now: Int64, batch: Int = 500, keepGoing: @Sendable () -> Bool = { true }
    ) async throws -> RetentionCounts {
        var counts = RetentionCounts()
        let batch = max(1, batch)
        counts.sessions = try await database.transaction { db in
            try await db.raw("DELETE FROM sessions WHERE expires_at <= \(bind: now) RETURNING token_hash").all().count
        }
        if let before = policy.runsBefore {
            while keepGoing() {
                let (runs, chunks, full) = try await pruneRuns(finishedBefore: before, limit: batch, keepGoing: keepGoing)
                counts.runs += runs
                counts.logChunks += chunks
                if !full { break }
                await Task.yield()
            }
            while keepGoing() {
                let deliveries = try await pruneDeliveries(createdBefore: before, limit: batch)
                counts.deliveries += deliveries
                if deliveries < batch { break }
                await Task.yield()
            }
            while keepGoing() {
                let (tasks, full) = try await pruneTasks(createdBefore: before, limit: batch)
                counts.tasks += tasks
                if !full { break }
                await Task.yield()
            }
        }
        if let before = policy.eventsBefore {
            while keepGoing() {
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

    /// Which finished runs may go: ended before `before`, and no run of their fan-out (the task's runs of
    /// one occurrence, which a rollout's error count and percentages count together) has not ended. A
    /// stuck run keeps its own fan-out, not the task's whole history.
    static func prunableRuns(before: Int64) -> SQLQueryString {
        """
        r.created_at < \(bind: before) AND r.finished_at < \(bind: before) AND r.status IN (\(unsafeRaw: terminalStatusList))
        AND NOT EXISTS (
            SELECT 1 FROM runs o WHERE o.task_id = r.task_id
            AND (o.occurrence = r.occurrence OR (o.occurrence IS NULL AND r.occurrence IS NULL))
            AND o.status IN (\(unsafeRaw: unfinishedStatusList)))
        """
    }

    /// One batch of finished runs that may go (see ``prunableRuns(before:)``): their output first, in
    /// transactions of at most `limit` × 10 chunks, then the runs. Returns the runs and chunks removed, and
    /// whether the batch was full (more may wait).
    func pruneRuns(finishedBefore before: Int64, limit: Int, keepGoing: @Sendable () -> Bool) async throws -> (runs: Int, chunks: Int, full: Bool) {
        let ids = try await database.read { db in
            try await db.raw("SELECT r.id FROM runs r WHERE " + Self.prunableRuns(before: before) + " ORDER BY r.created_at LIMIT \(bind: limit)")
                .all().map { try $0.decode(column: "id", as: String.self) }
        }
        guard !ids.isEmpty else { return (0, 0, false) }
        let chunkBatch = limit * 10
        var chunks = 0
        while true {
            guard keepGoing() else { return (0, chunks, false) }
            let deleted = try await database.transaction { db in
                try await db.raw(
                    """
                    DELETE FROM run_logs WHERE (run_id, seq) IN
                    (SELECT run_id, seq FROM run_logs WHERE run_id IN (\(binds: ids)) LIMIT \(bind: chunkBatch)) RETURNING seq
                    """
                ).all().count
            }
            chunks += deleted
            if deleted < chunkBatch { break }
            await Task.yield()
        }
        // The runs go once their output is gone; the conditions are checked again (nothing ends a finished
        // run, but a crash between the two leaves runs without output, which the next sweep removes).
        let runs = try await database.transaction { db in
            try await db.raw(
                "DELETE FROM runs WHERE id IN (\(binds: ids)) AND id IN (SELECT r.id FROM runs r WHERE " + Self.prunableRuns(before: before)
                    + ") RETURNING id"
            ).all().count
        }
        // A full batch of which none could go (a fan-out that got an unfinished run meanwhile) ends the sweep
        // rather than picking the same runs again.
        return (runs, chunks, ids.count == limit && runs > 0)
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

    /// One batch of one-off tasks (no cron) created before `before` whose runs are all gone and whose
    /// callback (if any) has no delivery still pending, with that callback and its finished deliveries.
    /// On PostgreSQL the tasks are locked first and checked again, so that a task that "run now" gave new
    /// runs meanwhile stays (run now locks its task too). Returns the tasks removed and whether the batch
    /// was full.
    func pruneTasks(createdBefore before: Int64, limit: Int) async throws -> (tasks: Int, full: Bool) {
        let unused: SQLQueryString = """
            t.created_at < \(bind: before) AND t.cron IS NULL AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.task_id = t.id)
            AND NOT EXISTS (
                SELECT 1 FROM webhooks w JOIN webhook_deliveries d ON d.webhook_id = w.id WHERE w.task_id = t.id AND d.status = 'pending')
            """
        return try await database.transaction { db in
            let candidates = try await db.raw("SELECT t.id FROM tasks t WHERE " + unused + " ORDER BY t.id LIMIT \(bind: limit)")
                .all().map { try $0.decode(column: "id", as: String.self) }
            guard !candidates.isEmpty else { return (0, false) }
            if db.dialect.name == "postgresql" {
                _ = try await db.raw("SELECT id FROM tasks WHERE id IN (\(binds: candidates)) ORDER BY id FOR UPDATE").all()
            }
            let ids = try await db.raw("SELECT t.id FROM tasks t WHERE t.id IN (\(binds: candidates)) AND " + unused)
                .all().map { try $0.decode(column: "id", as: String.self) }
            guard !ids.isEmpty else { return (0, candidates.count == limit) }
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
            let removed = try await db.raw("DELETE FROM tasks WHERE id IN (\(binds: ids)) RETURNING id").all().count
            return (removed, candidates.count == limit)
        }
    }

    /// One batch of events before `before` that the webhook queue has passed (its cursor is beyond them).
    /// The newest event always stays: the next id is one more than the largest stored, and a log emptied
    /// would hand out ids again that the webhook cursor and followers (`after`, `Last-Event-ID`) have passed.
    func pruneEvents(before: Int64, limit: Int) async throws -> Int {
        try await database.transaction { db in
            let ids = try await db.raw(
                """
                SELECT id FROM event_log WHERE at < \(bind: before)
                AND id <= (SELECT COALESCE(MAX(event_id), 0) FROM webhook_cursor WHERE name = 'events')
                AND id < (SELECT MAX(id) FROM event_log)
                ORDER BY id LIMIT \(bind: limit)
                """
            ).all().map { try $0.decode(column: "id", as: Int64.self) }
            guard !ids.isEmpty else { return 0 }
            return try await db.raw("DELETE FROM event_log WHERE id IN (\(binds: ids)) RETURNING id").all().count
        }
    }
}
