import KlevrCore
import SQLKit

/// One run to create: its agent and the agent's zone (a selector task's runs span zones).
public struct RunTarget: Sendable, Hashable {
    public var agentID: String
    public var zoneID: String
    public init(agentID: String, zoneID: String) {
        self.agentID = agentID
        self.zoneID = zoneID
    }
}

/// A task's rollout as the store enforces it.
struct RolloutTask: Sendable {
    var zoneID: String
    var policy: RolloutPolicy
}

/// A fan-out: the runs of a task for one occurrence (nil for a one-off task).
struct FanOut: Hashable, Sendable {
    var taskID: String
    var occurrence: Int64?
}

extension Store {
    // MARK: - Rollout

    /// Locks the tasks among `taskIDs` that have a rollout policy and returns their policies.
    ///
    /// On PostgreSQL the rows are locked (`FOR UPDATE`, in id order) until the transaction ends, so that the
    /// count of a task's runs in flight and the dispatch that relies on it (or the count of its errors and
    /// the stop) are one step for concurrent syncs. Every path that locks a rollout task does so before it
    /// changes any run of it (tasks first, then runs, in id order), so two of them cannot deadlock. SQLite
    /// transactions are serialized by the store already.
    ///
    /// With `concurrencyOnly`, only the tasks with a `maxConcurrency` (what a dispatch needs).
    static func lockRollouts(
        _ db: any SQLDatabase, taskIDs: some Collection<String>, concurrencyOnly: Bool = false
    ) async throws -> [String: RolloutTask] {
        guard !taskIDs.isEmpty else { return [:] }
        let postgres = db.dialect.name == "postgresql"
        let sorted = Set(taskIDs).sorted()
        var found: [String: RolloutTask] = [:]
        for start in stride(from: 0, to: sorted.count, by: 500) {
            let slice = Array(sorted[start..<min(start + 500, sorted.count)])
            var query: SQLQueryString = """
                SELECT id, zone_id, max_concurrency, max_errors FROM tasks
                WHERE id IN (\(binds: slice)) AND (max_concurrency IS NOT NULL
                """
            query = query + (concurrencyOnly ? ") ORDER BY id" : " OR max_errors IS NOT NULL) ORDER BY id")
            if postgres { query = query + " FOR UPDATE" }
            for row in try await db.raw(query).all() {
                let id = try row.decode(column: "id", as: String.self)
                let policy: RolloutPolicy
                do {
                    policy = try RolloutPolicy(
                        maxConcurrency: try row.decode(column: "max_concurrency", as: String?.self),
                        maxErrors: try row.decode(column: "max_errors", as: String?.self))
                } catch {
                    throw StoreError.corrupt("task \(id) has a stored rollout that does not read: \(error)")
                }
                found[id] = RolloutTask(zoneID: try row.decode(column: "zone_id", as: String.self), policy: policy)
            }
        }
        return found
    }

    /// Locks the rollout tasks of these runs (see ``lockRollouts(_:taskIDs:)``): one statement per 500
    /// results finds them, and nothing is locked when none of their tasks has a rollout.
    static func lockRollouts(_ db: any SQLDatabase, ofRuns runIDs: [String]) async throws -> [String: RolloutTask] {
        var ids = Set<String>()
        for start in stride(from: 0, to: runIDs.count, by: 500) {
            let slice = Array(runIDs[start..<min(start + 500, runIDs.count)])
            let rows = try await db.raw(
                """
                SELECT id FROM tasks WHERE (max_concurrency IS NOT NULL OR max_errors IS NOT NULL)
                AND id IN (SELECT task_id FROM runs WHERE id IN (\(binds: slice)))
                """
            ).all()
            for row in rows { ids.insert(try row.decode(column: "id", as: String.self)) }
        }
        return try await lockRollouts(db, taskIDs: ids)
    }

    /// Where each fan-out of these tasks stands (one grouped count), and each task's runs in flight across
    /// its occurrences.
    static func rolloutProgress(_ db: any SQLDatabase, taskIDs: [String]) async throws
        -> (fanOuts: [FanOut: RolloutProgress], inFlight: [String: Int])
    {
        var statuses: [FanOut: [RunStatus]] = [:]
        for start in stride(from: 0, to: taskIDs.count, by: 500) {
            let slice = Array(taskIDs[start..<min(start + 500, taskIDs.count)])
            let rows = try await db.raw(
                "SELECT task_id, occurrence, status, COUNT(*) AS n FROM runs WHERE task_id IN (\(binds: slice)) GROUP BY task_id, occurrence, status"
            ).all()
            for row in rows {
                let fanOut = FanOut(
                    taskID: try row.decode(column: "task_id", as: String.self), occurrence: try row.decode(column: "occurrence", as: Int64?.self))
                let status = try Self.status(try row.decode(column: "status", as: String.self))
                let count = Int(try row.decode(column: "n", as: Int64.self))
                statuses[fanOut, default: []] += Array(repeating: status, count: count)
            }
        }
        var fanOuts: [FanOut: RolloutProgress] = [:]
        var inFlight: [String: Int] = [:]
        for (fanOut, list) in statuses {
            let progress = RolloutProgress(statuses: list)
            fanOuts[fanOut] = progress
            inFlight[fanOut.taskID, default: 0] += progress.inFlight
        }
        return (fanOuts, inFlight)
    }

    /// The queued runs of `candidates` that must stay queued because their task already has as many runs in
    /// flight as its `maxConcurrency` allows. The tasks must be locked (``lockRollouts(_:taskIDs:)``). Runs
    /// are let through in the order given (oldest first).
    static func heldByConcurrency(_ db: any SQLDatabase, candidates: [RunRecord], rollouts: [String: RolloutTask]) async throws -> Set<String> {
        let limited = rollouts.filter { $0.value.policy.maxConcurrency != nil }
        guard !limited.isEmpty else { return [] }
        let progress = try await rolloutProgress(db, taskIDs: Array(limited.keys))
        var inFlight = progress.inFlight
        var held = Set<String>()
        for run in candidates where run.status == .queued {
            guard let rollout = limited[run.taskID] else { continue }
            let fanOut = progress.fanOuts[FanOut(taskID: run.taskID, occurrence: run.occurrence)] ?? RolloutProgress()
            let limit = rollout.policy.concurrencyLimit(targets: fanOut.targets)
            if inFlight[run.taskID, default: 0] < limit {
                inFlight[run.taskID, default: 0] += 1
            } else {
                held.insert(run.id)
            }
        }
        return held
    }

    /// After runs of these (locked) rollout tasks ended: a fan-out whose errors exceed its `maxErrors` stops
    /// (its runs not started yet end `canceled` through the run door with the reason, and one
    /// `task.rollout_stopped` event says why), and the agents that hold queued runs of a task with a
    /// concurrency limit are woken once the change commits, so that the freed slot is used at once.
    static func runsEnded(_ db: any SQLDatabase, rollouts: [String: RolloutTask], now: Int64, events: EventWriter) async throws {
        guard !rollouts.isEmpty else { return }
        let progress = try await rolloutProgress(db, taskIDs: Array(rollouts.keys))
        for (fanOut, state) in progress.fanOuts.sorted(by: { ($0.key.taskID, $0.key.occurrence ?? -1) < ($1.key.taskID, $1.key.occurrence ?? -1) }) {
            guard let rollout = rollouts[fanOut.taskID], case .stop(let reason) = rollout.policy.decide(state) else { continue }
            var query = SQLQueryString(Self.runSelect)
                + " WHERE r.task_id = \(bind: fanOut.taskID) AND r.status IN ('scheduled', 'queued')"
            if let occurrence = fanOut.occurrence {
                query = query + " AND r.occurrence = \(bind: occurrence)"
            } else {
                query = query + " AND r.occurrence IS NULL"
            }
            let waiting = try await db.raw(query + " ORDER BY r.created_at, r.id").all().map(Self.run(from:))
            let moves = try await moveRuns(
                db, waiting.map(RunRef.init), .cancel, set: "reason = \(bind: reason), finished_at = \(bind: now)", actor: .system,
                detail: ["reason": reason], now: now, events: events)
            var detail = ["reason": reason, "canceled": String(moves.changed.count), "errors": String(state.errors)]
            if let occurrence = fanOut.occurrence { detail["occurrence"] = String(occurrence) }
            events.append(.taskRolloutStopped, actor: .system, zoneID: rollout.zoneID, subject: fanOut.taskID, detail: detail, at: now)
        }
        let limited = rollouts.filter { $0.value.policy.maxConcurrency != nil }.keys.sorted()
        for start in stride(from: 0, to: limited.count, by: 500) {
            let slice = Array(limited[start..<min(start + 500, limited.count)])
            let rows = try await db.raw(
                "SELECT DISTINCT agent_id, zone_id FROM runs WHERE task_id IN (\(binds: slice)) AND status = 'queued' AND cancel_requested = 0"
            ).all()
            for row in rows {
                events.wake([
                    agentKey(try row.decode(column: "agent_id", as: String.self)), zoneKey(try row.decode(column: "zone_id", as: String.self)),
                ])
            }
        }
    }
}
