import KlevrCore
import SQLKit

/// What the run door needs to know of a run.
struct RunRef: Sendable, Equatable {
    var id: String
    var status: RunStatus
    var agentID: String
    var zoneID: String
    var taskID: String

    init(_ run: RunRecord) {
        self.init(id: run.id, status: run.status, agentID: run.agentID, zoneID: run.zoneID, taskID: run.taskID)
    }

    init(id: String, status: RunStatus, agentID: String, zoneID: String, taskID: String) {
        self.id = id
        self.status = status
        self.agentID = agentID
        self.zoneID = zoneID
        self.taskID = taskID
    }
}

/// What happened to the runs one event was applied to.
struct RunMoves: Sendable {
    /// Runs changed (with their new status).
    var changed: [RunRef] = []
    /// Runs for which the event repeats what is recorded: nothing changed, nothing recorded.
    var duplicates: [RunRef] = []
    /// Runs the state machine refused, or that another writer changed first; each is recorded as a
    /// `run.transition_refused` event.
    var refused: [(run: RunRef, reason: String)] = []
}

extension Store {
    // MARK: - The one door for run changes

    /// Applies `event` to `runs`: the ``RunStateMachine`` decides each one from its stored status, the
    /// change is written with that status in the `WHERE` clause (one statement per status found), and each
    /// change appends its typed event in the caller's transaction. A refusal appends a
    /// `run.transition_refused` event and changes nothing.
    ///
    /// - Parameter set: further assignments of the same `UPDATE` (times, exit code …).
    static func moveRuns(
        _ db: any SQLDatabase, _ runs: [RunRef], _ event: RunEvent, set extra: SQLQueryString? = nil, actor: EventActor,
        detail: [String: String] = [:], now: Int64, events: EventWriter
    ) async throws -> RunMoves {
        var moves = RunMoves()
        var groups: [RunStatus: [RunRef]] = [:]
        for run in runs { groups[run.status, default: []].append(run) }
        for (from, group) in groups.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let decision: RunStateMachine.Decision
            do {
                decision = try RunStateMachine.apply(event, to: from)
            } catch {
                for run in group { moves.refused.append((run, error.description)) }
                continue
            }
            let next: RunStatus
            switch decision {
            case .duplicate:
                moves.duplicates += group
                continue
            case .stay: next = from
            case .transition(let to): next = to
            }
            var changedIDs = Set<String>()
            for start in stride(from: 0, to: group.count, by: 500) {
                let slice = group[start..<min(start + 500, group.count)].map(\.id)
                var query = SQLQueryString("UPDATE runs SET status = \(bind: next.rawValue)")
                if let extra { query = query + ", " + extra }
                query = query + " WHERE id IN (\(binds: slice)) AND status = \(bind: from.rawValue) RETURNING id"
                for row in try await db.raw(query).all() { changedIDs.insert(try row.decode(column: "id", as: String.self)) }
            }
            let kind = RunStateMachine.eventKind(event, decision: decision)
            for run in group {
                guard changedIDs.contains(run.id) else {
                    moves.refused.append((run, "the run changed while this '\(event)' was applied; it is no longer '\(from.rawValue)'"))
                    continue
                }
                var moved = run
                moved.status = next
                moves.changed.append(moved)
                if let kind {
                    var eventDetail = detail
                    eventDetail["from"] = from.rawValue
                    eventDetail["status"] = next.rawValue
                    eventDetail["task"] = run.taskID
                    eventDetail["agent"] = run.agentID
                    events.append(kind, actor: actor, zoneID: run.zoneID, subject: run.id, detail: eventDetail, at: now)
                }
            }
        }
        for (run, reason) in moves.refused {
            events.append(
                .runTransitionRefused, actor: actor, zoneID: run.zoneID, subject: run.id,
                detail: ["from": run.status.rawValue, "event": "\(event)", "reason": reason, "task": run.taskID, "agent": run.agentID],
                at: now)
        }
        return moves
    }
}
