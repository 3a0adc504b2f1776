import KlevrCore
import SQLKit

extension Store {
    // MARK: - Tasks and runs

    /// Stores a task and one run per target agent, atomically, with a `task.created` event and one
    /// `run.created` event per run: `queued`, or `scheduled` until the task's `runAt` when that is later
    /// than its creation; with `deliverWithinSeconds`, each run must start by then (`deliver_by`).
    /// With a `callback`, the task's run events are delivered to its URL (see Store+Webhooks), from the first.
    /// Returns the run ids.
    public func createTask(_ task: TaskRecord, agentIDs: [String], actor: EventActor, callback: TaskCallback? = nil) async throws -> [String] {
        try await createTask(task, targets: agentIDs.map { RunTarget(agentID: $0, zoneID: task.zoneID) }, actor: actor, callback: callback)
    }

    /// Stores a task with one run per target (see ``createTask(_:agentIDs:actor:callback:)``); each run is of its
    /// agent's zone, and its events go to that zone.
    public func createTask(_ task: TaskRecord, targets: [RunTarget], actor: EventActor, callback: TaskCallback? = nil) async throws -> [String] {
        try await change { db, events in
            if let callback {
                _ = try await Self.insertWebhook(
                    db, try callback.webhook(taskID: task.id, createdAt: task.createdAt, createdBy: task.createdBy), sealedSecret: callback.sealedSecret)
            }
            try await db.raw(
                """
                INSERT INTO tasks (id, name, zone_id, target, steps, params, timeout_seconds, created_at, created_by, run_at, deliver_within_seconds,
                    cron, cron_time_zone, until_at, max_occurrences, overlap, catch_up, schedule_cursor, fired_count, next_fire_at,
                    max_concurrency, max_errors, credentials, recover)
                VALUES (\(bind: task.id), \(bind: task.name), \(bind: task.zoneID), \(bind: task.targetJSON), \(bind: task.stepsJSON),
                \(bind: task.paramsJSON), \(bind: Int64(task.timeoutSeconds)), \(bind: task.createdAt), \(bind: task.createdBy),
                \(bind: task.runAt), \(bind: task.deliverWithinSeconds.map(Int64.init)), \(bind: task.recurrence?.cron),
                \(bind: task.recurrence?.timeZone), \(bind: task.recurrence?.until), \(bind: task.recurrence?.maxOccurrences.map(Int64.init)),
                \(bind: task.recurrence?.overlap), \(bind: task.recurrence?.catchUp), \(bind: task.recurrence?.cursor), 0,
                \(bind: task.recurrence?.nextFireAt), \(bind: task.maxConcurrency), \(bind: task.maxErrors), \(bind: try Self.namesJSON(task.credentials)),
                \(bind: task.recoverJSON))
                """
            ).run()
            let dueAt = max(task.runAt ?? task.createdAt, task.createdAt)
            let status: RunStatus = dueAt > task.createdAt ? .scheduled : .queued
            var detail = ["name": task.name, "runs": String(targets.count)]
            if let maxConcurrency = task.maxConcurrency { detail["maxConcurrency"] = maxConcurrency }
            if let maxErrors = task.maxErrors { detail["maxErrors"] = maxErrors }
            if !task.credentials.isEmpty { detail["credentials"] = task.credentials.joined(separator: ",") }
            if let recurrence = task.recurrence {
                detail["cron"] = recurrence.cron
                detail["timeZone"] = recurrence.timeZone
            }
            events.append(.taskCreated, actor: actor, zoneID: task.zoneID, subject: task.id, detail: detail, at: task.createdAt)
            let runIDs = try await Self.insertRuns(
                db, task: task, targets: targets, status: status, dueAt: dueAt, occurrence: nil, actor: actor, now: task.createdAt, events: events)
            return runIDs
        }
    }

    /// Inserts one run per agent for `task` (a few multi-row inserts, not one statement per agent), each
    /// with a `run.created` event; with the task's `deliverWithinSeconds`, each must start by `dueAt` plus that.
    static func insertRuns(
        _ db: any SQLDatabase, task: TaskRecord, targets: [RunTarget], status: RunStatus, dueAt: Int64, occurrence: Int64?, actor: EventActor,
        now: Int64, events: EventWriter
    ) async throws -> [String] {
        let deliverBy = task.deliverWithinSeconds.map { dueAt + Int64($0) * 1000 }
        var runIDs: [String] = []
        for start in stride(from: 0, to: targets.count, by: 200) {
            let slice = targets[start..<min(start + 200, targets.count)]
            var query = SQLQueryString("INSERT INTO runs (id, task_id, agent_id, zone_id, status, created_at, due_at, deliver_by, occurrence) VALUES ")
            for (index, target) in slice.enumerated() {
                let agentID = target.agentID
                let runID = Secrets.newID()
                runIDs.append(runID)
                if index > 0 { query = query + ", " }
                query = query
                    + "(\(bind: runID), \(bind: task.id), \(bind: agentID), \(bind: target.zoneID), \(bind: status.rawValue), "
                    + "\(bind: now), \(bind: dueAt), \(bind: deliverBy), \(bind: occurrence))"
                var detail = ["status": status.rawValue, "task": task.id, "agent": agentID]
                if status == .scheduled { detail["dueAt"] = String(dueAt) }
                if let deliverBy { detail["deliverBy"] = String(deliverBy) }
                if let occurrence { detail["occurrence"] = String(occurrence) }
                events.append(.runCreated, actor: actor, zoneID: target.zoneID, subject: runID, detail: detail, at: now)
            }
            try await db.raw(query).run()
        }
        return runIDs
    }

    static let taskSelect = "SELECT t.*, z.name AS zone_name FROM tasks t JOIN zones z ON z.id = t.zone_id"

    public func task(id: String) async throws -> TaskRecord? {
        try await database.read { db in
            try await db.raw(SQLQueryString(Self.taskSelect) + " WHERE t.id = \(bind: id)").first().map(Self.task(from:))
        }
    }

    public func tasks(zoneName: String?, after cursor: Cursor?, limit: Int) async throws -> [TaskRecord] {
        try await database.read { db in
            var query = SQLQueryString(Self.taskSelect) + " WHERE 1 = 1"
            if let zoneName { query = query + " AND z.name = \(bind: zoneName)" }
            if let cursor {
                query = query + " AND (t.created_at < \(bind: cursor.createdAt) OR (t.created_at = \(bind: cursor.createdAt) AND t.id < \(bind: cursor.id)))"
            }
            query = query + " ORDER BY t.created_at DESC, t.id DESC LIMIT \(bind: Int64(limit))"
            return try await db.raw(query).all().map(Self.task(from:))
        }
    }

    static func task(from row: any SQLRow) throws -> TaskRecord {
        TaskRecord(
            id: try row.decode(column: "id", as: String.self), name: try row.decode(column: "name", as: String.self),
            zoneID: try row.decode(column: "zone_id", as: String.self), zoneName: try row.decode(column: "zone_name", as: String.self),
            targetJSON: try row.decode(column: "target", as: String.self), stepsJSON: try row.decode(column: "steps", as: String.self),
            paramsJSON: try row.decode(column: "params", as: String.self),
            timeoutSeconds: Int(try row.decode(column: "timeout_seconds", as: Int64.self)),
            createdAt: try row.decode(column: "created_at", as: Int64.self), createdBy: try row.decode(column: "created_by", as: String.self),
            canceledAt: try row.decode(column: "canceled_at", as: Int64?.self), runAt: try row.decode(column: "run_at", as: Int64?.self),
            deliverWithinSeconds: try row.decode(column: "deliver_within_seconds", as: Int64?.self).map { Int($0) }
        ).with(recurrence: try recurrence(from: row), credentials: try names(from: row, column: "credentials"), recoverJSON: try row.decode(column: "recover", as: String.self))
            .with(maxConcurrency: try row.decode(column: "max_concurrency", as: String?.self), maxErrors: try row.decode(column: "max_errors", as: String?.self))
    }

    static func recurrence(from row: any SQLRow) throws -> RecurrenceRecord? {
        guard let cron = try row.decode(column: "cron", as: String?.self) else { return nil }
        return RecurrenceRecord(
            cron: cron, timeZone: try row.decode(column: "cron_time_zone", as: String?.self) ?? "UTC",
            until: try row.decode(column: "until_at", as: Int64?.self),
            maxOccurrences: try row.decode(column: "max_occurrences", as: Int64?.self).map { Int($0) },
            overlap: try row.decode(column: "overlap", as: String?.self) ?? "skip", catchUp: try row.decode(column: "catch_up", as: String?.self) ?? "none",
            cursor: try row.decode(column: "schedule_cursor", as: Int64?.self) ?? 0,
            firedCount: Int(try row.decode(column: "fired_count", as: Int64.self)), nextFireAt: try row.decode(column: "next_fire_at", as: Int64?.self),
            pausedAt: try row.decode(column: "paused_at", as: Int64?.self))
    }

    static let runSelect = "SELECT r.*, z.name AS zone_name FROM runs r JOIN zones z ON z.id = r.zone_id"

    public func run(id: String) async throws -> RunRecord? {
        try await database.read { db in
            try await db.raw(SQLQueryString(Self.runSelect) + " WHERE r.id = \(bind: id)").first().map(Self.run(from:))
        }
    }

    /// Runs matching a filter, newest first.
    public func runs(_ filter: RunFilter, after cursor: Cursor?, limit: Int) async throws -> [RunRecord] {
        try await database.read { db in
            var query = SQLQueryString(Self.runSelect) + " WHERE 1 = 1"
            if let taskID = filter.taskID { query = query + " AND r.task_id = \(bind: taskID)" }
            if let agentID = filter.agentID { query = query + " AND r.agent_id = \(bind: agentID)" }
            if let zoneName = filter.zoneName { query = query + " AND z.name = \(bind: zoneName)" }
            if let status = filter.status { query = query + " AND r.status = \(bind: status.rawValue)" }
            if let cursor {
                query = query + " AND (r.created_at < \(bind: cursor.createdAt) OR (r.created_at = \(bind: cursor.createdAt) AND r.id < \(bind: cursor.id)))"
            }
            query = query + " ORDER BY r.created_at DESC, r.id DESC LIMIT \(bind: Int64(limit))"
            return try await db.raw(query).all().map(Self.run(from:))
        }
    }

    static func run(from row: any SQLRow) throws -> RunRecord {
        RunRecord(
            id: try row.decode(column: "id", as: String.self), taskID: try row.decode(column: "task_id", as: String.self),
            agentID: try row.decode(column: "agent_id", as: String.self), zoneID: try row.decode(column: "zone_id", as: String.self),
            zoneName: try row.decode(column: "zone_name", as: String.self),
            status: try status(try row.decode(column: "status", as: String.self)),
            reason: try row.decode(column: "reason", as: String?.self),
            exitCode: try row.decode(column: "exit_code", as: Int64?.self).map { Int($0) },
            result: try row.decode(column: "result", as: String?.self),
            cancelRequested: try row.decode(column: "cancel_requested", as: Int64.self) != 0,
            createdAt: try row.decode(column: "created_at", as: Int64.self),
            dispatchedAt: try row.decode(column: "dispatched_at", as: Int64?.self),
            startedAt: try row.decode(column: "started_at", as: Int64?.self),
            finishedAt: try row.decode(column: "finished_at", as: Int64?.self), dueAt: try row.decode(column: "due_at", as: Int64?.self),
            deliverBy: try row.decode(column: "deliver_by", as: Int64?.self), occurrence: try row.decode(column: "occurrence", as: Int64?.self))
    }

    /// A stored run status; one this build does not know is an error, never a default.
    static func status(_ text: String) throws -> RunStatus {
        guard let status = RunStatus(rawValue: text) else { throw StoreError.corrupt("unknown run status '\(text)' in the database") }
        return status
    }

    /// Cancels a run: a queued run ends at once; a dispatched or running one is marked so that its agent
    /// is told to stop it. Returns the run as it is afterwards.
    /// - Throws: ``StoreError/conflict(_:)`` for a run that already ended (recorded as a refused transition).
    public func cancelRun(id: String, now: Int64, actor: EventActor) async throws -> RunRecord {
        let (run, refusal) = try await change { db, events in
            guard let run = try await Self.run(db, id: id) else { throw StoreError.notFound("no run \(id)") }
            let refusal = try await Self.cancel(db, runs: [run], now: now, actor: actor, reason: "canceled by \(actor.name)", events: events)
            return (try await Self.run(db, id: id) ?? run, refusal.first)
        }
        if let refusal { throw StoreError.conflict(refusal) }
        return run
    }

    static func run(_ db: any SQLDatabase, id: String) async throws -> RunRecord? {
        try await db.raw(SQLQueryString(Self.runSelect) + " WHERE r.id = \(bind: id)").first().map(Self.run(from:))
    }

    /// Cancels runs through the run door; returns the refusals' reasons.
    static func cancel(
        _ db: any SQLDatabase, runs: [RunRecord], now: Int64, actor: EventActor, reason: String, events: EventWriter
    ) async throws -> [String] {
        let queued = runs.filter { $0.status == .queued }.map(RunRef.init)
        let held = runs.filter { $0.status != .queued }.map(RunRef.init)
        let ended = try await moveRuns(
            db, queued, .cancel, set: "reason = \(bind: reason), finished_at = \(bind: now)", actor: actor, detail: ["reason": reason],
            now: now, events: events)
        let ordered = try await moveRuns(
            db, held, .cancel, set: "cancel_requested = 1, cancel_sent_at = NULL", actor: actor, detail: ["reason": reason], now: now,
            events: events)
        return (ended.refused + ordered.refused).map(\.reason)
    }

    /// Cancels every unfinished run of a task and marks the task canceled. Returns the affected agent ids.
    public func cancelTask(id: String, now: Int64, actor: EventActor) async throws -> [String] {
        try await change { db, events in
            guard let task = try await db.raw("SELECT id, zone_id FROM tasks WHERE id = \(bind: id)").first() else {
                throw StoreError.notFound("no task \(id)")
            }
            let marked = try await db.raw(
                "UPDATE tasks SET canceled_at = \(bind: now) WHERE id = \(bind: id) AND canceled_at IS NULL RETURNING id"
            ).first()
            if marked != nil {
                events.append(.taskCanceled, actor: actor, zoneID: try task.decode(column: "zone_id", as: String.self), subject: id, at: now)
            }
            let runs = try await db.raw(
                SQLQueryString(Self.runSelect) + " WHERE r.task_id = \(bind: id) AND r.status IN ('scheduled', 'queued', 'dispatched', 'running', 'recovering') AND r.cancel_requested = 0"
            ).all().map(Self.run(from:))
            _ = try await Self.cancel(db, runs: runs, now: now, actor: actor, reason: "task canceled by \(actor.name)", events: events)
            return runs.map(\.agentID)
        }
    }

    /// A run's stored output after `seq`, in order.
    public func logs(runID: String, after seq: Int64, limit: Int) async throws -> [LogRecord] {
        try await database.read { db in
            try await db.raw(
                "SELECT * FROM run_logs WHERE run_id = \(bind: runID) AND seq > \(bind: seq) ORDER BY seq LIMIT \(bind: Int64(limit))"
            ).all().map { row in
                LogRecord(
                    seq: try row.decode(column: "seq", as: Int64.self), stream: try row.decode(column: "stream", as: String.self),
                    data: try row.decode(column: "data", as: String.self), at: try row.decode(column: "at", as: Int64.self))
            }
        }
    }

    /// The agents of a zone that are not retired, newest last; without `retiring`, also not those being
    /// retired (no new run targets them).
    public func activeAgents(zoneID: String, retiring: Bool = true) async throws -> [AgentRecord] {
        try await database.read { db in
            var query = SQLQueryString(Self.agentSelect) + " WHERE a.zone_id = \(bind: zoneID) AND a.retired_at IS NULL"
            if !retiring { query = query + " AND a.retire_requested_at IS NULL" }
            return try await db.raw(query + " ORDER BY a.enrolled_at, a.id").all().map(Self.agent(from:))
        }
    }
}
