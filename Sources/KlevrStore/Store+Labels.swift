import KlevrCore
import SQLKit

extension Store {
    // MARK: - Agent labels

    /// Records the labels an agent reported (`--labels`, at enrollment or in its first report after a
    /// start). They count for selectors unless an operator set the agent's labels through the API, which
    /// win until they are cleared; a change of the labels that count appends `agent.labels_changed`.
    static func reportLabels(
        _ db: any SQLDatabase, agentID: String, labels: [String: String], actor: EventActor, now: Int64, events: EventWriter
    ) async throws {
        guard
            let row = try await db.raw("SELECT id, zone_id, labels, reported_labels, labels_set_by FROM agents WHERE id = \(bind: agentID)").first()
        else { return }
        let reported = try Self.labels(try row.decode(column: "reported_labels", as: String.self), agent: row)
        let current = try Self.labels(try row.decode(column: "labels", as: String.self), agent: row)
        let setByOperator = try row.decode(column: "labels_set_by", as: String?.self) != nil
        guard reported != labels || (!setByOperator && current != labels) else { return }
        let text = try encodeJSON(labels)
        if setByOperator {
            try await db.raw("UPDATE agents SET reported_labels = \(bind: text) WHERE id = \(bind: agentID)").run()
            return
        }
        try await db.raw("UPDATE agents SET reported_labels = \(bind: text), labels = \(bind: text) WHERE id = \(bind: agentID)").run()
        if current != labels {
            events.append(
                .agentLabelsChanged, actor: actor, zoneID: try row.decode(column: "zone_id", as: String.self), subject: agentID,
                detail: ["labels": Self.labelText(labels), "source": "agent"], at: now)
        }
    }

    /// Sets an agent's labels through the API (they override what the agent reports), or with nil goes
    /// back to the agent's reported labels. Appends `agent.labels_changed` in the same transaction when
    /// the labels that count change. Returns the agent as it is afterwards.
    public func setLabels(agentID: String, labels: [String: String]?, actor: EventActor, now: Int64) async throws -> AgentRecord {
        try await change { db, events in
            guard let agent = try await db.raw(SQLQueryString(Self.agentSelect) + " WHERE a.id = \(bind: agentID)").first().map(Self.agent(from:))
            else { throw StoreError.notFound("no agent \(agentID)") }
            guard agent.retiredAt == nil else { throw StoreError.conflict("agent \(agentID) is retired") }
            let effective = labels ?? agent.reportedLabels
            try await db.raw(
                "UPDATE agents SET labels = \(bind: try Self.encodeJSON(effective)), labels_set_by = \(bind: labels == nil ? nil : actor.name) WHERE id = \(bind: agentID)"
            ).run()
            if effective != agent.labels || (labels == nil) != (agent.labelsSetBy == nil) {
                events.append(
                    .agentLabelsChanged, actor: actor, zoneID: agent.zoneID, subject: agentID,
                    detail: ["labels": Self.labelText(effective), "source": labels == nil ? "agent" : "api"], at: now)
            }
            var updated = agent
            updated.labels = effective
            updated.labelsSetBy = labels == nil ? nil : actor.name
            return updated
        }
    }

    /// `key=value,…` in key order.
    static func labelText(_ labels: [String: String]) -> String {
        labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    /// Agents (newest first) whose labels the selector matches, optionally of one zone. Labels are matched
    /// here, page after page of the agents table, until `limit` are found or the table ends (at most
    /// `scanLimit` agents are read per call; the cursor of the last one read continues).
    public func agents(
        zoneName: String?, selector: LabelSelector, after cursor: Cursor?, limit: Int, scanLimit: Int = 20_000
    ) async throws -> (agents: [AgentRecord], next: Cursor?) {
        var found: [AgentRecord] = []
        var position = cursor
        var scanned = 0
        while found.count < limit {
            let page = try await agents(zoneName: zoneName, after: position, limit: 500)
            scanned += page.count
            for agent in page where selector.matches(agent.labels) {
                found.append(agent)
                if found.count == limit { return (found, Cursor(createdAt: agent.enrolledAt, id: agent.id)) }
            }
            guard page.count == 500, let last = page.last else { return (found, nil) }
            position = Cursor(createdAt: last.enrolledAt, id: last.id)
            if scanned >= scanLimit { return (found, position) }
        }
        return (found, found.last.map { Cursor(createdAt: $0.enrolledAt, id: $0.id) })
    }

    /// The active agents (not retired, not being retired) whose labels the selector matches: of one zone,
    /// or of every zone with nil. Oldest first.
    public func activeAgents(matching selector: LabelSelector, zoneID: String?) async throws -> [AgentRecord] {
        try await database.read { db in
            var query = SQLQueryString(Self.agentSelect) + " WHERE a.retired_at IS NULL AND a.retire_requested_at IS NULL"
            if let zoneID { query = query + " AND a.zone_id = \(bind: zoneID)" }
            return try await db.raw(query + " ORDER BY a.enrolled_at, a.id").all().map(Self.agent(from:)).filter { selector.matches($0.labels) }
        }
    }
}
