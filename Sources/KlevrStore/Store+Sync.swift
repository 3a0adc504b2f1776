import KlevrCore
import SQLKit

/// What the manager stored from one agent's report, and what it refused for good.
public struct ReportOutcome: Sendable, Equatable {
    public var startedAcked: [String] = []
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

    /// Applies an agent's report in one transaction: starts, log chunks (idempotent by run and seq) and
    /// results, each checked by ``RunStateMachine``. Items about runs of other agents, or transitions the
    /// machine refuses, are rejected one by one without affecting the rest.
    public func applyReport(
        agentID: String, started: [ReportedStart], logs: [ReportedLog], results: [ReportedResult], now: Int64, fence: Fence? = nil
    ) async throws -> ReportOutcome {
        try await database.transaction { db in
            if let fence {
                guard try await Self.fenceAndRenew(
                    db, zoneID: fence.zoneID, agentID: fence.primaryID, epoch: fence.epoch, now: now, duration: fence.leaseDuration)
                else { throw StoreError.staleEpoch("epoch \(fence.epoch) is not the zone's current lease; step down") }
            }
            var outcome = ReportOutcome()
            try await db.raw("UPDATE agents SET last_seen_at = \(bind: now) WHERE id = \(bind: agentID)").run()
            var owned: [String: RunStatus] = [:]
            func status(of runID: String) async throws -> RunStatus? {
                if let known = owned[runID] { return known }
                guard
                    let row = try await db.raw("SELECT status, agent_id FROM runs WHERE id = \(bind: runID)").first(),
                    try row.decode(column: "agent_id", as: String.self) == agentID,
                    let status = RunStatus(rawValue: try row.decode(column: "status", as: String.self))
                else { return nil }
                owned[runID] = status
                return status
            }
            for start in started {
                guard let current = try await status(of: start.runID) else {
                    outcome.rejected[start.runID] = "no run \(start.runID) for this agent"
                    continue
                }
                do {
                    if case .transition(let next) = try RunStateMachine.apply(.start, to: current) {
                        try await db.raw(
                            "UPDATE runs SET status = \(bind: next.rawValue), started_at = \(bind: start.at) WHERE id = \(bind: start.runID)"
                        ).run()
                        owned[start.runID] = next
                        outcome.changedRuns.append(start.runID)
                    }
                    outcome.startedAcked.append(start.runID)
                } catch let error as RunTransitionError {
                    outcome.rejected[start.runID] = error.description
                }
            }
            for chunk in logs {
                guard try await status(of: chunk.runID) != nil else {
                    outcome.rejected[chunk.runID] = "no run \(chunk.runID) for this agent"
                    continue
                }
                try await db.raw(
                    """
                    INSERT INTO run_logs (run_id, seq, stream, data, at)
                    VALUES (\(bind: chunk.runID), \(bind: chunk.seq), \(bind: chunk.stream), \(bind: chunk.data), \(bind: chunk.at))
                    ON CONFLICT (run_id, seq) DO NOTHING
                    """
                ).run()
                outcome.logsAcked[chunk.runID] = max(outcome.logsAcked[chunk.runID] ?? 0, chunk.seq)
            }
            for result in results {
                guard let current = try await status(of: result.runID) else {
                    outcome.rejected[result.runID] = "no run \(result.runID) for this agent"
                    continue
                }
                do {
                    if case .transition(let next) = try RunStateMachine.apply(.finish(result.outcome), to: current) {
                        try await db.raw(
                            """
                            UPDATE runs SET status = \(bind: next.rawValue), exit_code = \(bind: result.exitCode.map(Int64.init)),
                            reason = \(bind: result.reason), result = \(bind: result.result), finished_at = \(bind: result.finishedAt),
                            started_at = COALESCE(started_at, \(bind: result.finishedAt))
                            WHERE id = \(bind: result.runID)
                            """
                        ).run()
                        owned[result.runID] = next
                        outcome.changedRuns.append(result.runID)
                    }
                    outcome.resultsAcked.append(result.runID)
                } catch let error as RunTransitionError {
                    outcome.rejected[result.runID] = error.description
                }
            }
            return outcome
        }
    }

    /// Runs to hand to an agent now, and runs it must stop.
    ///
    /// Queued runs become `dispatched`. A dispatched run whose start the agent has not reported within
    /// `redeliverAfter` ms is handed out again (delivery is at least once; the agent never executes a run
    /// twice). Cancel orders are repeated on the same schedule until the agent reports the run's end.
    public func takeWork(agentID: String, now: Int64, redeliverAfter: Int64, limit: Int = 100) async throws
        -> (runs: [PendingRun], cancels: [String])
    {
        try await database.transaction { db in
            let rows = try await db.raw(
                SQLQueryString(Self.runSelect)
                    + """
                     WHERE r.agent_id = \(bind: agentID) AND r.cancel_requested = 0
                    AND (r.status = 'queued' OR (r.status = 'dispatched' AND r.dispatched_at < \(bind: now - redeliverAfter)))
                    ORDER BY r.created_at, r.id LIMIT \(bind: Int64(limit))
                    """
            ).all().map(Self.run(from:))
            var pending: [PendingRun] = []
            var tasks: [String: TaskRecord] = [:]
            for run in rows {
                let task: TaskRecord
                if let known = tasks[run.taskID] {
                    task = known
                } else {
                    guard let loaded = try await db.raw(SQLQueryString(Self.taskSelect) + " WHERE t.id = \(bind: run.taskID)").first().map(Self.task(from:))
                    else { continue }
                    tasks[run.taskID] = loaded
                    task = loaded
                }
                guard case .transition = (try? RunStateMachine.apply(.dispatch, to: run.status)) ?? .duplicate else {
                    // A dispatched run being re-sent: refresh its delivery time only.
                    try await db.raw("UPDATE runs SET dispatched_at = \(bind: now) WHERE id = \(bind: run.id)").run()
                    pending.append(PendingRun(run: run, task: task))
                    continue
                }
                try await db.raw(
                    "UPDATE runs SET status = 'dispatched', dispatched_at = \(bind: now) WHERE id = \(bind: run.id) AND status = 'queued'"
                ).run()
                var dispatched = run
                dispatched.status = .dispatched
                dispatched.dispatchedAt = now
                pending.append(PendingRun(run: dispatched, task: task))
            }
            let cancelRows = try await db.raw(
                """
                SELECT id FROM runs WHERE agent_id = \(bind: agentID) AND cancel_requested = 1
                AND status IN ('dispatched', 'running') AND (cancel_sent_at IS NULL OR cancel_sent_at < \(bind: now - redeliverAfter))
                """
            ).all()
            var cancels: [String] = []
            for row in cancelRows {
                let id = try row.decode(column: "id", as: String.self)
                try await db.raw("UPDATE runs SET cancel_sent_at = \(bind: now) WHERE id = \(bind: id)").run()
                cancels.append(id)
            }
            return (pending, cancels)
        }
    }
}
