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
            // Expired runs are errors of their rollout: its tasks are locked first, counted after.
            let rollouts = try await Self.lockRollouts(db, taskIDs: Set(overdue.map(\.taskID)))
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
            try await Self.runsEnded(db, rollouts: rollouts, now: now, events: events)
            return expired
        }
    }
}

extension Store {
    // MARK: - Undeliverable runs

    /// Ends the runs that can no longer be delivered: those of an agent that is retired (a run created for
    /// it while its retirement was being written, say). Not yet handed out, they end `canceled`; handed out,
    /// they are abandoned (`canceled` too): a retired agent's credential no longer works, so it can never
    /// report them. Each says why.
    public func endUndeliverableRuns(now: Int64, limit: Int = 1_000) async throws -> [RunRecord] {
        try await change { db, events in
            let stranded = try await db.raw(
                SQLQueryString(Self.runSelect)
                    + """
                     WHERE r.status IN ('scheduled', 'queued', 'dispatched', 'running', 'recovering')
                    AND r.agent_id IN (SELECT id FROM agents WHERE retired_at IS NOT NULL)
                    ORDER BY r.created_at, r.id LIMIT \(bind: Int64(limit))
                    """
            ).all().map(Self.run(from:))
            guard !stranded.isEmpty else { return [] }
            let reason = "its agent was retired: the run can no longer be delivered"
            let waiting = stranded.filter { $0.status == .scheduled || $0.status == .queued }
            let handedOut = stranded.filter { $0.status != .scheduled && $0.status != .queued }
            let canceled = try await Self.moveRuns(
                db, waiting.map(RunRef.init), .cancel, set: "reason = \(bind: reason), finished_at = \(bind: now)", actor: .system,
                detail: ["reason": reason], now: now, events: events)
            let abandoned = try await Self.moveRuns(
                db, handedOut.map(RunRef.init), .abandon, set: "reason = \(bind: reason), finished_at = \(bind: now)", actor: .system,
                detail: ["reason": reason], now: now, events: events)
            let moved = Set((canceled.changed + abandoned.changed).map(\.id))
            return stranded.filter { moved.contains($0.id) }
        }
    }

    /// The earliest time at which the scheduler has something to do: a recurring task's next occurrence,
    /// a scheduled run's due time, or the moment a run passes its delivery deadline (`grace` later for a
    /// dispatched one); nil when nothing is waiting. One statement, so an idle scheduler costs one read.
    public func nextSchedulerMoment(grace: Int64) async throws -> Int64? {
        try await database.read { db in
            try await db.raw(
                """
                SELECT MIN(m) AS m FROM (
                  SELECT MIN(next_fire_at) AS m FROM tasks
                   WHERE cron IS NOT NULL AND canceled_at IS NULL AND paused_at IS NULL AND next_fire_at IS NOT NULL
                  UNION ALL SELECT MIN(due_at) AS m FROM runs WHERE status = 'scheduled'
                  UNION ALL SELECT MIN(deliver_by) + 1 AS m FROM runs WHERE deliver_by IS NOT NULL AND status IN ('scheduled', 'queued')
                  UNION ALL SELECT MIN(deliver_by) + \(bind: grace + 1) AS m FROM runs WHERE deliver_by IS NOT NULL AND status = 'dispatched'
                ) moments
                """
            ).first()?.decode(column: "m", as: Int64?.self)
        }
    }

    /// How many runs exist for this occurrence of recurring tasks (what `klevr bench cron` watches).
    public func runCount(occurrence: Int64) async throws -> Int {
        try await database.read { db in
            Int(try await db.raw("SELECT COUNT(*) AS n FROM runs WHERE occurrence = \(bind: occurrence)").first()?.decode(column: "n", as: Int64.self) ?? 0)
        }
    }

    // MARK: - Recurring tasks

    /// Recurring tasks whose next occurrence has come (not paused, not canceled), oldest due first.
    public func dueRecurringTasks(now: Int64, after: (nextFireAt: Int64, id: String)? = nil, limit: Int = 200) async throws -> [TaskRecord] {
        try await database.read { db in
            var query = SQLQueryString(Self.taskSelect)
                + """
                 WHERE t.cron IS NOT NULL AND t.canceled_at IS NULL AND t.paused_at IS NULL
                AND t.next_fire_at IS NOT NULL AND t.next_fire_at <= \(bind: now)
                """
            if let after {
                query = query + " AND (t.next_fire_at > \(bind: after.nextFireAt) OR (t.next_fire_at = \(bind: after.nextFireAt) AND t.id > \(bind: after.id)))"
            }
            return try await db.raw(query + " ORDER BY t.next_fire_at, t.id LIMIT \(bind: Int64(limit))").all().map(Self.task(from:))
        }
    }

    /// Whether a run of the task has not ended yet (for the overlap policy).
    public func hasActiveRuns(taskID: String) async throws -> Bool {
        try await database.read { db in
            try await db.raw(
                """
                SELECT COUNT(*) AS n FROM runs WHERE task_id = \(bind: taskID)
                AND status IN ('scheduled', 'queued', 'dispatched', 'running', 'recovering')
                """
            ).first()?.decode(column: "n", as: Int64.self) ?? 0 > 0
        }
    }

    /// What one scheduling decision does to a recurring task.
    public struct Firing: Sendable {
        /// The occurrences that run now, each on every agent of `agentIDs`.
        public var fire: [Int64]
        public var agentIDs: [String]
        /// The zone of each agent of `agentIDs` (a selector task's agents span zones); an agent not in
        /// it is of the task's zone.
        public var zones: [String: String] = [:]
        /// Occurrences that did not run, with why (recorded as one `task.skipped` event).
        public var skipped: Int
        public var skipReason: String
        public var cursor: Int64
        public var firedCount: Int
        public var nextFireAt: Int64?

        public init(fire: [Int64], agentIDs: [String], skipped: Int, skipReason: String, cursor: Int64, firedCount: Int, nextFireAt: Int64?) {
            self.fire = fire
            self.agentIDs = agentIDs
            self.skipped = skipped
            self.skipReason = skipReason
            self.cursor = cursor
            self.firedCount = firedCount
            self.nextFireAt = nextFireAt
        }
    }

    /// Applies a scheduling decision in one transaction: the task's cursor moves from `expectedCursor`
    /// (compare-and-set: another manager, or this one before a restart, that got there first wins, and
    /// nothing fires twice) and the occurrences' runs are created queued. Returns the runs created, or nil
    /// when the cursor had moved.
    public func fire(taskID: String, expectedCursor: Int64, _ firing: Firing, now: Int64) async throws -> [RunRecord]? {
        try await change { db, events in
            try await Self.fire(db, events: events, taskID: taskID, expectedCursor: expectedCursor, firing, now: now)
        }
    }

    /// One occurrence decision of several tasks, as ``fire(taskID:expectedCursor:_:now:)`` each, in one
    /// transaction (a minute boundary with a thousand tasks is a few transactions, not a thousand). A task
    /// whose cursor had moved is left out of the answer; the others fire.
    public func fire(_ firings: [(taskID: String, expectedCursor: Int64, firing: Firing)], now: Int64) async throws -> [RunRecord] {
        guard !firings.isEmpty else { return [] }
        return try await change { db, events in
            var runs: [RunRecord] = []
            for item in firings {
                runs += try await Self.fire(db, events: events, taskID: item.taskID, expectedCursor: item.expectedCursor, item.firing, now: now) ?? []
            }
            return runs
        }
    }

    static func fire(
        _ db: any SQLDatabase, events: EventWriter, taskID: String, expectedCursor: Int64, _ firing: Firing, now: Int64
    ) async throws -> [RunRecord]? {
            guard
                let row = try await db.raw(
                    """
                    UPDATE tasks SET schedule_cursor = \(bind: firing.cursor), fired_count = \(bind: Int64(firing.firedCount)),
                        next_fire_at = \(bind: firing.nextFireAt)
                    WHERE id = \(bind: taskID) AND schedule_cursor = \(bind: expectedCursor) AND canceled_at IS NULL AND paused_at IS NULL
                    RETURNING id
                    """
                ).first(), (try? row.decode(column: "id", as: String.self)) == taskID,
                let task = try await db.raw(SQLQueryString(Self.taskSelect) + " WHERE t.id = \(bind: taskID)").first().map(Self.task(from:))
            else { return nil }
            var runIDs: [String] = []
            for occurrence in firing.fire {
                runIDs += try await Self.insertRuns(
                    db, task: task, targets: firing.agentIDs.map { RunTarget(agentID: $0, zoneID: firing.zones[$0] ?? task.zoneID) },
                    status: .queued, dueAt: occurrence,
                    occurrence: occurrence, actor: .system, now: now, events: events)
            }
            if !firing.fire.isEmpty {
                events.append(
                    .taskFired, actor: .system, zoneID: task.zoneID, subject: taskID,
                    detail: ["occurrences": firing.fire.map(String.init).joined(separator: ","), "runs": String(runIDs.count)], at: now)
            }
            if firing.skipped > 0 {
                events.append(
                    .taskSkipped, actor: .system, zoneID: task.zoneID, subject: taskID,
                    detail: ["count": String(firing.skipped), "reason": firing.skipReason], at: now)
            }
            guard !runIDs.isEmpty else { return [] }
            return try await db.raw(SQLQueryString(Self.runSelect) + " WHERE r.id IN (\(binds: runIDs))").all().map(Self.run(from:))
    }

    /// Runs a task now, on `targets` (its target as it is now), whatever its schedule: one-off or recurring,
    /// paused or not. The runs are queued at once as an occurrence of their own (`now`, or just after the
    /// task's latest occurrence if that is not earlier: a rollout counts them apart from any other), with the
    /// task's deadline counted from now; a recurring task's schedule and its count of occurrences do not
    /// move. Recorded as a `task.fired` event by `actor` (`manual`). On PostgreSQL the task's row is locked
    /// first (as the scheduler's cursor update and the retention sweep lock it), so that two of these, or
    /// one and a firing, do not both find no active run.
    /// - Throws: ``StoreError/notFound(_:)`` for no such task; ``StoreError/conflict(_:)`` for a canceled
    ///   task, or with `refuseWhileActive` one whose earlier run has not ended (checked in the same transaction).
    public func runTaskNow(taskID: String, targets: [RunTarget], now: Int64, actor: EventActor, refuseWhileActive: Bool) async throws -> [RunRecord] {
        try await change { db, events in
            if db.dialect.name == "postgresql" {
                _ = try await db.raw("SELECT id FROM tasks WHERE id = \(bind: taskID) FOR UPDATE").all()
            }
            guard let task = try await db.raw(SQLQueryString(Self.taskSelect) + " WHERE t.id = \(bind: taskID)").first().map(Self.task(from:))
            else { throw StoreError.notFound("no task \(taskID)") }
            guard task.canceledAt == nil else { throw StoreError.conflict("task \(taskID) was canceled") }
            if refuseWhileActive {
                let active = try await db.raw(
                    "SELECT COUNT(*) AS n FROM runs WHERE task_id = \(bind: taskID) AND status IN (\(unsafeRaw: Self.unfinishedStatusList))"
                ).first()?.decode(column: "n", as: Int64.self) ?? 0
                guard active == 0 else {
                    throw StoreError.conflict("a run of task \(taskID) has not ended yet, and its overlap policy is skip")
                }
            }
            let latest = try await db.raw("SELECT MAX(occurrence) AS o FROM runs WHERE task_id = \(bind: taskID)").first()?
                .decode(column: "o", as: Int64?.self)
            let occurrence = max(now, (latest ?? now - 1) + 1)
            let runIDs = try await Self.insertRuns(
                db, task: task, targets: targets, status: .queued, dueAt: now, occurrence: occurrence, actor: actor, now: now, events: events)
            events.append(
                .taskFired, actor: actor, zoneID: task.zoneID, subject: taskID,
                detail: ["manual": "true", "occurrences": String(occurrence), "runs": String(runIDs.count)], at: now)
            guard !runIDs.isEmpty else { return [] }
            return try await db.raw(SQLQueryString(Self.runSelect) + " WHERE r.id IN (\(binds: runIDs))").all().map(Self.run(from:))
        }
    }

    /// Pauses a recurring task (nothing fires until it is resumed). Returns false when it is not a
    /// recurring task that runs (one-off, canceled or already paused).
    public func pauseTask(id: String, now: Int64, actor: EventActor) async throws -> Bool {
        try await change { db, events in
            guard
                let row = try await db.raw(
                    """
                    UPDATE tasks SET paused_at = \(bind: now)
                    WHERE id = \(bind: id) AND cron IS NOT NULL AND canceled_at IS NULL AND paused_at IS NULL RETURNING zone_id
                    """
                ).first()
            else { return false }
            events.append(.taskPaused, actor: actor, zoneID: try row.decode(column: "zone_id", as: String.self), subject: id, at: now)
            return true
        }
    }

    /// Resumes a paused recurring task from `now`: occurrences of the pause are not caught up.
    public func resumeTask(id: String, now: Int64, nextFireAt: Int64?, actor: EventActor) async throws -> Bool {
        try await change { db, events in
            guard
                let row = try await db.raw(
                    """
                    UPDATE tasks SET paused_at = NULL, schedule_cursor = \(bind: now), next_fire_at = \(bind: nextFireAt)
                    WHERE id = \(bind: id) AND cron IS NOT NULL AND canceled_at IS NULL AND paused_at IS NOT NULL RETURNING zone_id
                    """
                ).first()
            else { return false }
            events.append(.taskResumed, actor: actor, zoneID: try row.decode(column: "zone_id", as: String.self), subject: id, at: now)
            return true
        }
    }
}
