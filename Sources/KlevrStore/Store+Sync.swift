import KlevrCore
import SQLKit

/// What the manager stored from one agent's report, and what it refused for good.
public struct ReportOutcome: Sendable, Equatable {
    public var startedAcked: [String] = []
    public var recoveringAcked: [String] = []
    public var logsAcked: [String: Int64] = [:]
    public var resultsAcked: [String] = []
    public var rejected: [String: String] = [:]
    /// Runs whose status changed (for waking log followers).
    public var changedRuns: [String] = []
    public init() {}
}

/// One start, log chunk or result of a report, in storage terms.
public struct ReportedStart: Sendable { public var runID: String; public var at: Int64
    public init(runID: String, at: Int64) { self.runID = runID; self.at = at }
}
public struct ReportedLog: Sendable { public var runID: String; public var seq: Int64; public var stream: String; public var data: String; public var at: Int64
    public init(runID: String, seq: Int64, stream: String, data: String, at: Int64) {
        self.runID = runID; self.seq = seq; self.stream = stream; self.data = data; self.at = at
    }
}
public struct ReportedResult: Sendable {
    public var runID: String; public var outcome: RunOutcome; public var exitCode: Int?; public var reason: String?
    public var result: String?; public var finishedAt: Int64
    public init(runID: String, outcome: RunOutcome, exitCode: Int?, reason: String?, result: String?, finishedAt: Int64) {
        self.runID = runID; self.outcome = outcome; self.exitCode = exitCode; self.reason = reason; self.result = result
        self.finishedAt = finishedAt
    }
}

/// One agent's report, in storage terms.
public struct ReportedBatch: Sendable {
    public var agentID: String
    public var started: [ReportedStart]
    /// Runs whose recover steps started (a step failed).
    public var recovering: [ReportedStart] = []
    public var logs: [ReportedLog]
    public var results: [ReportedResult]
    /// The agent's wall clock minus the manager's (ms), when it said.
    public var clockSkewMillis: Int64?
    /// The labels the agent reports (`--labels`), when its report carries its host facts.
    public var labels: [String: String]?
    public init(
        agentID: String, started: [ReportedStart], logs: [ReportedLog], results: [ReportedResult], clockSkewMillis: Int64? = nil,
        labels: [String: String]? = nil
    ) {
        self.labels = labels
        self.agentID = agentID
        self.started = started
        self.logs = logs
        self.results = results
        self.clockSkewMillis = clockSkewMillis
    }
}

/// The lease a primary claims when it reports: checked and renewed in the same transaction.
public struct Fence: Sendable {
    public var zoneID: String
    public var primaryID: String
    public var epoch: Int64
    public var leaseDuration: Int64
    public init(zoneID: String, primaryID: String, epoch: Int64, leaseDuration: Int64) {
        self.zoneID = zoneID
        self.primaryID = primaryID
        self.epoch = epoch
        self.leaseDuration = leaseDuration
    }
}

extension Store {
    // MARK: - The agent sync exchange

    /// Applies an agent's report in one transaction (see ``applyReports(_:now:fence:)``).
    public func applyReport(
        agentID: String, started: [ReportedStart], logs: [ReportedLog], results: [ReportedResult], now: Int64, fence: Fence? = nil
    ) async throws -> ReportOutcome {
        let outcomes = try await applyReports(
            [ReportedBatch(agentID: agentID, started: started, logs: logs, results: results)], now: now, fence: fence)
        return outcomes.first ?? ReportOutcome()
    }

    /// Applies the reports of one or more agents (a primary's relay of its zone) in one transaction:
    /// starts, log chunks (idempotent by run and seq) and results, each checked by ``RunStateMachine``.
    /// Items about runs of other agents, or transitions the machine refuses, are rejected one by one
    /// without affecting the rest.
    ///
    /// Times are the manager's: an agent's reported times are kept only within what the manager saw
    /// (a start not before the run's dispatch nor after now, a finish not before the start), so that
    /// created ≤ dispatched ≤ started ≤ finished holds whatever the agents' clocks say.
    ///
    /// `alsoSeen` are agents of `zoneID` a primary hears from without a report: they count as seen now.
    public func applyReports(
        _ batches: [ReportedBatch], now: Int64, fence: Fence? = nil, alsoSeen: [String] = [], zoneID: String = ""
    ) async throws -> [ReportOutcome] {
        try await change { db, events in
            if let fence {
                guard try await Self.fenceAndRenew(
                    db, zoneID: fence.zoneID, agentID: fence.primaryID, epoch: fence.epoch, now: now, duration: fence.leaseDuration)
                else { throw StoreError.staleEpoch("epoch \(fence.epoch) is not the zone's current lease; step down") }
            }
            // The rollout tasks of the reported results are locked before any agent or run row is written
            // (see ``lockRollouts(_:taskIDs:)``): their errors and free slots are counted after the results.
            let resultIDs = batches.flatMap { $0.results.map(\.runID) }
            let rollouts = resultIDs.isEmpty ? [:] : try await Self.lockRollouts(db, ofRuns: resultIDs)
            for slice in stride(from: 0, to: alsoSeen.count, by: 500).map({ Array(alsoSeen[$0..<min($0 + 500, alsoSeen.count)]) }) {
                try await db.raw(
                    "UPDATE agents SET last_seen_at = \(bind: now) WHERE zone_id = \(bind: zoneID) AND id IN (\(binds: slice))"
                ).run()
            }
            var outcomes: [ReportOutcome] = []
            for batch in batches {
                outcomes.append(try await Self.apply(batch, db: db, now: now, events: events))
            }
            try await Self.runsEnded(db, rollouts: rollouts, now: now, events: events)
            return outcomes
        }
    }

    private struct OwnedRun {
        var ref: RunRef
        var floor: Int64
        var startedAt: Int64?
    }

    private static func apply(_ batch: ReportedBatch, db: any SQLDatabase, now: Int64, events: EventWriter) async throws -> ReportOutcome {
        let agentID = batch.agentID
        var outcome = ReportOutcome()
        let agentRow: (any SQLRow)?
        if let skew = batch.clockSkewMillis {
            agentRow = try await db.raw(
                "UPDATE agents SET last_seen_at = \(bind: now), clock_skew_ms = \(bind: skew) WHERE id = \(bind: agentID) RETURNING hostname"
            ).first()
        } else {
            agentRow = try await db.raw("UPDATE agents SET last_seen_at = \(bind: now) WHERE id = \(bind: agentID) RETURNING hostname").first()
        }
        let actor = EventActor(kind: .agent, id: agentID, name: try agentRow?.decode(column: "hostname", as: String.self) ?? agentID)
        if let labels = batch.labels, agentRow != nil {
            try await reportLabels(db, agentID: agentID, labels: labels, actor: actor, now: now, events: events)
        }
        if batch.started.isEmpty && batch.recovering.isEmpty && batch.logs.isEmpty && batch.results.isEmpty { return outcome }
        var owned: [String: OwnedRun] = [:]
        func run(_ runID: String) async throws -> OwnedRun? {
            if let known = owned[runID] { return known }
            guard
                let row = try await db.raw(
                    "SELECT status, agent_id, zone_id, task_id, created_at, dispatched_at, started_at FROM runs WHERE id = \(bind: runID)"
                ).first(),
                try row.decode(column: "agent_id", as: String.self) == agentID
            else { return nil }
            let created = try row.decode(column: "created_at", as: Int64.self)
            let dispatched = try row.decode(column: "dispatched_at", as: Int64?.self)
            let ref = RunRef(
                id: runID, status: try status(try row.decode(column: "status", as: String.self)), agentID: agentID,
                zoneID: try row.decode(column: "zone_id", as: String.self), taskID: try row.decode(column: "task_id", as: String.self))
            let known = OwnedRun(ref: ref, floor: max(created, dispatched ?? created), startedAt: try row.decode(column: "started_at", as: Int64?.self))
            owned[runID] = known
            return known
        }
        for start in batch.started {
            guard let current = try await run(start.runID) else {
                outcome.rejected[start.runID] = "no run \(start.runID) for this agent"
                continue
            }
            let at = min(max(start.at, current.floor), now)
            let moves = try await moveRuns(db, [current.ref], .start, set: "started_at = \(bind: at)", actor: actor, now: now, events: events)
            if let moved = moves.changed.first {
                owned[start.runID] = OwnedRun(ref: moved, floor: current.floor, startedAt: at)
                outcome.changedRuns.append(start.runID)
            }
            if let refusal = moves.refused.first {
                outcome.rejected[start.runID] = refusal.reason
            } else {
                outcome.startedAcked.append(start.runID)
            }
        }
        for recovery in batch.recovering {
            guard let current = try await run(recovery.runID) else {
                outcome.rejected[recovery.runID] = "no run \(recovery.runID) for this agent"
                continue
            }
            let moves = try await moveRuns(db, [current.ref], .recover, actor: actor, now: now, events: events)
            if let moved = moves.changed.first {
                owned[recovery.runID] = OwnedRun(ref: moved, floor: current.floor, startedAt: current.startedAt)
                outcome.changedRuns.append(recovery.runID)
            }
            if let refusal = moves.refused.first {
                outcome.rejected[recovery.runID] = refusal.reason
            } else {
                outcome.recoveringAcked.append(recovery.runID)
            }
        }
        for chunk in batch.logs {
            guard let current = try await run(chunk.runID) else {
                outcome.rejected[chunk.runID] = "no run \(chunk.runID) for this agent"
                continue
            }
            let at = min(max(chunk.at, current.startedAt ?? current.floor), now)
            try await db.raw(
                """
                INSERT INTO run_logs (run_id, seq, stream, data, at)
                VALUES (\(bind: chunk.runID), \(bind: chunk.seq), \(bind: chunk.stream), \(bind: chunk.data), \(bind: at))
                ON CONFLICT (run_id, seq) DO NOTHING
                """
            ).run()
            outcome.logsAcked[chunk.runID] = max(outcome.logsAcked[chunk.runID] ?? 0, chunk.seq)
        }
        for result in batch.results {
            guard let current = try await run(result.runID) else {
                outcome.rejected[result.runID] = "no run \(result.runID) for this agent"
                continue
            }
            let started = current.startedAt ?? min(max(result.finishedAt, current.floor), now)
            let finished = min(max(result.finishedAt, started), now)
            var detail: [String: String] = [:]
            if let exitCode = result.exitCode { detail["exitCode"] = String(exitCode) }
            if let reason = result.reason { detail["reason"] = String(reason.prefix(500)) }
            let moves = try await moveRuns(
                db, [current.ref], .finish(result.outcome),
                set: """
                    exit_code = \(bind: result.exitCode.map(Int64.init)), reason = \(bind: result.reason), result = \(bind: result.result),
                    finished_at = \(bind: finished), started_at = \(bind: started)
                    """,
                actor: actor, detail: detail, now: now, events: events)
            if let moved = moves.changed.first {
                owned[result.runID] = OwnedRun(ref: moved, floor: current.floor, startedAt: started)
                outcome.changedRuns.append(result.runID)
            }
            if let refusal = moves.refused.first {
                outcome.rejected[result.runID] = refusal.reason
            } else {
                outcome.resultsAcked.append(result.runID)
            }
        }
        try await finishRetirement(db, agentID: agentID, now: now, events: events)
        return outcome
    }

    /// Runs to hand to an agent now, and runs it must stop (see ``takeWork(agentIDs:now:redeliverAfter:limit:)``).
    public func takeWork(agentID: String, now: Int64, redeliverAfter: Int64, limit: Int = 100) async throws
        -> (runs: [PendingRun], cancels: [String])
    {
        let work = try await takeWork(agentIDs: [agentID], now: now, redeliverAfter: redeliverAfter, limit: limit)
        return (work.runs, work.cancels.map(\.runID))
    }

    /// Runs to hand to a set of agents now (a primary's whole zone in one transaction and a bounded number
    /// of statements), and runs they must stop.
    ///
    /// Queued runs become `dispatched`. A dispatched run whose start the agent has not reported within
    /// `redeliverAfter` ms is handed out again (delivery is at least once; the agent never executes a run
    /// twice). Cancel orders are repeated on the same schedule until the agent reports the run's end.
    ///
    /// With `zoneID` (a primary's zone) the runs are found by zone, one statement whatever the number of
    /// agents, and kept for `agentIDs` only.
    public func takeWork(agentIDs: [String], zoneID: String? = nil, now: Int64, redeliverAfter: Int64, limit: Int = 2_000) async throws
        -> (runs: [PendingRun], cancels: [(agentID: String, runID: String)])
    {
        guard !agentIDs.isEmpty else { return ([], []) }
        let wanted = Set(agentIDs)
        let slices = zoneID != nil ? [] : stride(from: 0, to: agentIDs.count, by: 500).map { Array(agentIDs[$0..<min($0 + 500, agentIDs.count)]) }
        return try await change { db, events in
            var rows: [RunRecord] = []
            if let zoneID {
                rows = try await db.raw(
                    SQLQueryString(Self.runSelect)
                        + """
                         WHERE r.zone_id = \(bind: zoneID) AND r.status IN ('queued', 'dispatched') AND r.cancel_requested = 0
                        AND (r.deliver_by IS NULL OR r.deliver_by > \(bind: now))
                        AND (r.status = 'queued' OR r.delivered_at IS NULL OR r.delivered_at < \(bind: now - redeliverAfter))
                        ORDER BY r.created_at, r.id
                        """
                ).all().map(Self.run(from:)).filter { wanted.contains($0.agentID) }
            }
            for slice in slices where rows.count < limit {
                rows += try await db.raw(
                    SQLQueryString(Self.runSelect)
                        + """
                         WHERE r.agent_id IN (\(binds: slice)) AND r.cancel_requested = 0
                        AND (r.deliver_by IS NULL OR r.deliver_by > \(bind: now))
                        AND (r.status = 'queued' OR (r.status = 'dispatched'
                            AND (r.delivered_at IS NULL OR r.delivered_at < \(bind: now - redeliverAfter))))
                        ORDER BY r.created_at, r.id LIMIT \(bind: Int64(limit - rows.count))
                        """
                ).all().map(Self.run(from:))
            }
            // A task with a concurrency limit is locked, and its runs in flight counted, before any of its runs
            // is handed out: two syncs at once never hand out more than the limit between them. The runs it
            // holds back are left out before the batch is cut to `limit`, so that a large rollout waiting in
            // a zone does not hide the zone's other work from its primary.
            let queuedTasks = Set(rows.lazy.filter { $0.status == .queued }.map(\.taskID))
            let limited = try await Self.lockRollouts(db, taskIDs: queuedTasks, concurrencyOnly: true)
            if !limited.isEmpty {
                let held = try await Self.heldByConcurrency(db, candidates: rows, rollouts: limited)
                rows.removeAll { held.contains($0.id) }
            }
            if rows.count > limit { rows = Array(rows.prefix(limit)) }
            var tasks: [String: TaskRecord] = [:]
            let taskIDs = Array(Set(rows.map(\.taskID)))
            for slice in stride(from: 0, to: taskIDs.count, by: 500).map({ Array(taskIDs[$0..<min($0 + 500, taskIDs.count)]) }) {
                for task in try await db.raw(SQLQueryString(Self.taskSelect) + " WHERE t.id IN (\(binds: slice))").all().map(Self.task(from:)) {
                    tasks[task.id] = task
                }
            }
            let handable = rows.filter { tasks[$0.taskID] != nil }
            // Through the run door: queued runs are dispatched (their dispatch time is kept for good),
            // dispatched ones whose start was not reported in time are delivered again.
            let dispatched = try await Self.moveRuns(
                db, handable.filter { $0.status == .queued }.map(RunRef.init), .dispatch,
                set: "dispatched_at = \(bind: now), delivered_at = \(bind: now)", actor: .system, now: now, events: events)
            let redelivered = try await Self.moveRuns(
                db, handable.filter { $0.status == .dispatched }.map(RunRef.init), .redeliver, set: "delivered_at = \(bind: now)",
                actor: .system, now: now, events: events)
            let moved = Set((dispatched.changed + redelivered.changed).map(\.id))
            var pending: [PendingRun] = []
            for run in handable where moved.contains(run.id) {
                guard let task = tasks[run.taskID] else { continue }
                var handed = run
                handed.status = .dispatched
                if handed.dispatchedAt == nil { handed.dispatchedAt = now }
                pending.append(PendingRun(run: handed, task: task))
            }
            var cancels: [(agentID: String, runID: String)] = []
            let cancelScopes: [SQLQueryString] =
                zoneID.map { ["zone_id = \(bind: $0)"] } ?? slices.map { "agent_id IN (\(binds: $0))" }
            for scope in cancelScopes {
                let cancelRows = try await db.raw(
                    "SELECT id, agent_id FROM runs WHERE " + scope
                        + """
                         AND cancel_requested = 1
                        AND status IN ('dispatched', 'running', 'recovering') AND (cancel_sent_at IS NULL OR cancel_sent_at < \(bind: now - redeliverAfter))
                        """
                ).all()
                let found = try cancelRows.map { (agentID: try $0.decode(column: "agent_id", as: String.self), runID: try $0.decode(column: "id", as: String.self)) }
                    .filter { wanted.contains($0.agentID) }
                if !found.isEmpty {
                    try await db.raw("UPDATE runs SET cancel_sent_at = \(bind: now) WHERE id IN (\(binds: found.map(\.runID)))").run()
                }
                cancels += found
            }
            return (pending, cancels)
        }
    }
}
