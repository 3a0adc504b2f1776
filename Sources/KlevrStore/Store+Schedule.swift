import KlevrCore
import SQLKit

extension Store {
    // MARK: - Schedules and deadlines

    /// Queues the scheduled runs whose time came (`scheduled → queued`, a `run.due` event each), at most
    /// `limit` at a time, through the run door. Returns the runs queued.
    public func queueDueRuns(now: Int64, limit: Int = 1_000) async throws -> [RunRecord] {
        try await change { db, events in
            let due = try await db.raw(
                SQLQueryString(Self.runSelect)
                    + " WHERE r.status = 'scheduled' AND r.due_at <= \(bind: now) ORDER BY r.due_at, r.id LIMIT \(bind: Int64(limit))"
            ).all().map(Self.run(from:))
            let moves = try await Self.moveRuns(db, due.map(RunRef.init), .due, actor: .system, now: now, events: events)
            let moved = Set(moves.changed.map(\.id))
            return due.filter { moved.contains($0.id) }
        }
    }

    /// Ends `expired` the runs that did not start by their deadline: scheduled and queued ones once it
    /// passed, dispatched ones `grace` ms later (the agent may have started one just before, by its clock;
    /// its start report wins if it comes in that time). A run that started is never expired. Returns the
    /// runs expired.
    public func expireOverdueRuns(now: Int64, grace: Int64, limit: Int = 1_000) async throws -> [RunRecord] {
        try await change { db, events in
            let overdue = try await db.raw(
                SQLQueryString(Self.runSelect)
                    + """
                     WHERE r.deliver_by IS NOT NULL AND (
                        (r.status IN ('scheduled', 'queued') AND r.deliver_by < \(bind: now))
                        OR (r.status = 'dispatched' AND r.deliver_by < \(bind: now - grace)))
                    ORDER BY r.deliver_by, r.id LIMIT \(bind: Int64(limit))
                    """
            ).all().map(Self.run(from:))
            var expired: [RunRecord] = []
            // One reason per deadline, so that the runs of one task move together.
            for (deadline, runs) in Dictionary(grouping: overdue, by: { $0.deliverBy ?? 0 }) {
                let reason = "not started by its delivery deadline (\(deadline), epoch ms): it will not run"
                let moves = try await Self.moveRuns(
                    db, runs.map(RunRef.init), .expire, set: "reason = \(bind: reason), finished_at = \(bind: now)", actor: .system,
                    detail: ["reason": reason], now: now, events: events)
                let moved = Set(moves.changed.map(\.id))
                expired += runs.filter { moved.contains($0.id) }
            }
            return expired
        }
    }
}
