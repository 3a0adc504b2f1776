import KlevrCore
import SQLKit

extension Store {
    // MARK: - Agents

    /// Enrolls an agent, or re-enrolls the agent of the zone with the same public key (same state dir):
    /// it keeps its id and gets a new credential.
    ///
    /// `proofTime` is the time of the agent's signed enrollment statement: a statement no newer than the
    /// agent's last one is a replay and is refused (``StoreError/conflict(_:)``).
    public func enrollAgent(
        zoneID: String, publicKey: String, sealKey: String = "", proofTime: Int64 = 0, credentialHash: String, hostname: String, os: String,
        version: String, addresses: [String], labels: [String: String]? = nil, now: Int64
    ) async throws -> String {
        let addressJSON = try Self.encodeJSON(addresses)
        return try await change { db, events in
            if let existing = try await db.raw(
                "SELECT id, enroll_proof_at FROM agents WHERE zone_id = \(bind: zoneID) AND public_key = \(bind: publicKey) AND retired_at IS NULL"
            ).first() {
                let id = try existing.decode(column: "id", as: String.self)
                guard proofTime > (try existing.decode(column: "enroll_proof_at", as: Int64.self)) else {
                    throw StoreError.conflict("this enrollment statement is not newer than the agent's last one (a replay)")
                }
                try await db.raw(
                    """
                    UPDATE agents SET credential_hash = \(bind: credentialHash), hostname = \(bind: hostname), os = \(bind: os),
                    version = \(bind: version), addresses = \(bind: addressJSON), last_seen_at = \(bind: now), seal_key = \(bind: sealKey),
                    enroll_proof_at = \(bind: proofTime) WHERE id = \(bind: id)
                    """
                ).run()
                events.append(
                    .agentReenrolled, actor: EventActor(kind: .agent, id: id, name: hostname), zoneID: zoneID, subject: id,
                    detail: ["hostname": hostname, "version": version], at: now)
                if let labels {
                    try await Self.reportLabels(db, agentID: id, labels: labels, actor: EventActor(kind: .agent, id: id, name: hostname), now: now, events: events)
                }
                return id
            }
            let id = Secrets.newID()
            try await db.raw(
                """
                INSERT INTO agents (id, zone_id, hostname, os, version, addresses, public_key, credential_hash, enrolled_at, last_seen_at,
                seal_key, enroll_proof_at)
                VALUES (\(bind: id), \(bind: zoneID), \(bind: hostname), \(bind: os), \(bind: version), \(bind: addressJSON),
                \(bind: publicKey), \(bind: credentialHash), \(bind: now), \(bind: now), \(bind: sealKey), \(bind: proofTime))
                """
            ).run()
            events.append(
                .agentEnrolled, actor: EventActor(kind: .agent, id: id, name: hostname), zoneID: zoneID, subject: id,
                detail: ["hostname": hostname, "version": version], at: now)
            if let labels, !labels.isEmpty {
                try await Self.reportLabels(db, agentID: id, labels: labels, actor: EventActor(kind: .agent, id: id, name: hostname), now: now, events: events)
            }
            return id
        }
    }

    static let agentSelect = "SELECT a.*, z.name AS zone_name FROM agents a JOIN zones z ON z.id = a.zone_id"

    /// The agent a credential belongs to, unless it was retired.
    public func agent(credentialHash: String) async throws -> AgentRecord? {
        try await database.read { db in
            try await db.raw(
                SQLQueryString(Self.agentSelect) + " WHERE a.credential_hash = \(bind: credentialHash) AND a.retired_at IS NULL"
            ).first().map(Self.agent(from:))
        }
    }

    public func agent(id: String) async throws -> AgentRecord? {
        try await database.read { db in
            try await db.raw(SQLQueryString(Self.agentSelect) + " WHERE a.id = \(bind: id)").first().map(Self.agent(from:))
        }
    }

    /// Agents, newest first, optionally of one zone.
    public func agents(zoneName: String?, after cursor: Cursor?, limit: Int) async throws -> [AgentRecord] {
        try await database.read { db in
            var query = SQLQueryString(Self.agentSelect) + " WHERE 1 = 1"
            if let zoneName { query = query + " AND z.name = \(bind: zoneName)" }
            if let cursor {
                query = query + " AND (a.enrolled_at < \(bind: cursor.createdAt) OR (a.enrolled_at = \(bind: cursor.createdAt) AND a.id < \(bind: cursor.id)))"
            }
            query = query + " ORDER BY a.enrolled_at DESC, a.id DESC LIMIT \(bind: Int64(limit))"
            return try await db.raw(query).all().map(Self.agent(from:))
        }
    }

    static func agent(from row: any SQLRow) throws -> AgentRecord {
        AgentRecord(
            id: try row.decode(column: "id", as: String.self), zoneID: try row.decode(column: "zone_id", as: String.self),
            zoneName: try row.decode(column: "zone_name", as: String.self),
            hostname: try row.decode(column: "hostname", as: String.self), os: try row.decode(column: "os", as: String.self),
            version: try row.decode(column: "version", as: String.self),
            addresses: (try? decodeJSON([String].self, try row.decode(column: "addresses", as: String.self))) ?? [],
            publicKey: try row.decode(column: "public_key", as: String.self),
            enrolledAt: try row.decode(column: "enrolled_at", as: Int64.self),
            lastSeenAt: try row.decode(column: "last_seen_at", as: Int64.self),
            retiredAt: try row.decode(column: "retired_at", as: Int64?.self),
            retireRequestedAt: try row.decode(column: "retire_requested_at", as: Int64?.self),
            peerAddress: try row.decode(column: "peer_address", as: String.self),
            managerRoute: try row.decode(column: "manager_route", as: Int64.self) != 0,
            priority: Int(try row.decode(column: "priority", as: Int64.self)),
            sealKey: try row.decode(column: "seal_key", as: String.self),
            clockSkewMillis: try row.decode(column: "clock_skew_ms", as: Int64?.self),
            labels: try labels(try row.decode(column: "labels", as: String.self), agent: row),
            reportedLabels: try labels(try row.decode(column: "reported_labels", as: String.self), agent: row),
            labelsSetBy: try row.decode(column: "labels_set_by", as: String?.self))
    }

    /// Stored labels; a text that does not decode is corrupt data, never "no labels".
    static func labels(_ text: String, agent row: any SQLRow) throws -> [String: String] {
        do {
            return try decodeJSON([String: String].self, text)
        } catch {
            throw StoreError.corrupt("agent \((try? row.decode(column: "id", as: String.self)) ?? "?") has stored labels that do not decode")
        }
    }

    /// Records where an agent's peer API is, and whether it just reached the manager directly.
    public func updatePeer(agentID: String, peerAddress: String?, reachedManager: Bool, priority: Int? = nil) async throws {
        try await database.read { db in
            if let priority {
                try await db.raw("UPDATE agents SET priority = \(bind: Int64(priority)) WHERE id = \(bind: agentID)").run()
            }
            if let peerAddress {
                try await db.raw("UPDATE agents SET peer_address = \(bind: peerAddress) WHERE id = \(bind: agentID)").run()
            }
            if reachedManager {
                try await db.raw("UPDATE agents SET manager_route = 1 WHERE id = \(bind: agentID)").run()
            }
        }
    }

    /// Records that the agents a primary hears from were seen.
    public func touchAgents(ids: [String], zoneID: String, now: Int64) async throws {
        guard !ids.isEmpty else { return }
        try await database.read { db in
            for slice in stride(from: 0, to: ids.count, by: 500).map({ Array(ids[$0..<min($0 + 500, ids.count)]) }) {
                try await db.raw(
                    "UPDATE agents SET last_seen_at = \(bind: now) WHERE zone_id = \(bind: zoneID) AND id IN (\(binds: slice))"
                ).run()
            }
        }
    }

    /// Records that an agent was heard from.
    public func touchAgent(id: String, now: Int64) async throws {
        try await database.read { db in
            try await db.raw("UPDATE agents SET last_seen_at = \(bind: now) WHERE id = \(bind: id)").run()
        }
    }

    /// Retires an agent. Its queued runs end `canceled` at once; it is told to stop the runs it holds, and
    /// its credential dies only when it reported them stopped (see ``finishRetirement(_:agentID:now:events:)``)
    /// or, for an agent that does not answer, after a grace (``finishOverdueRetirements(requestedBefore:now:)``).
    /// Retiring an agent that holds no run retires it at once. Returns whether it is retired now.
    @discardableResult
    public func retireAgent(id: String, now: Int64, actor: EventActor) async throws -> Bool {
        try await change { db, events in
            guard let row = try await db.raw("SELECT zone_id, retired_at, retire_requested_at FROM agents WHERE id = \(bind: id)").first() else {
                throw StoreError.notFound("no agent \(id)")
            }
            if try row.decode(column: "retired_at", as: Int64?.self) != nil { return true }
            let zoneID = try row.decode(column: "zone_id", as: String.self)
            if try row.decode(column: "retire_requested_at", as: Int64?.self) == nil {
                try await db.raw("UPDATE agents SET retire_requested_at = \(bind: now) WHERE id = \(bind: id)").run()
                events.append(.agentRetireRequested, actor: actor, zoneID: zoneID, subject: id, at: now)
            }
            let runs = try await db.raw(
                SQLQueryString(Self.runSelect)
                    + " WHERE r.agent_id = \(bind: id) AND r.status IN ('scheduled', 'queued', 'dispatched', 'running', 'recovering') AND r.cancel_requested = 0"
            ).all().map(Self.run(from:))
            _ = try await Self.cancel(db, runs: runs, now: now, actor: actor, reason: "agent retired", events: events)
            return try await Self.finishRetirement(db, agentID: id, now: now, events: events)
        }
    }

    /// Retires an agent whose retirement was asked for, once it holds no dispatched or running run.
    @discardableResult
    static func finishRetirement(_ db: any SQLDatabase, agentID: String, now: Int64, events: EventWriter) async throws -> Bool {
        let held = try await db.raw(
            "SELECT COUNT(*) AS n FROM runs WHERE agent_id = \(bind: agentID) AND status IN ('scheduled', 'queued', 'dispatched', 'running', 'recovering')"
        ).first()?.decode(column: "n", as: Int64.self) ?? 0
        guard held == 0 else { return false }
        guard
            let retired = try await db.raw(
                """
                UPDATE agents SET retired_at = \(bind: now)
                WHERE id = \(bind: agentID) AND retire_requested_at IS NOT NULL AND retired_at IS NULL RETURNING zone_id
                """
            ).first()
        else { return false }
        events.append(
            .agentRetired, actor: .system, zoneID: try retired.decode(column: "zone_id", as: String.self), subject: agentID,
            detail: ["note": "its runs stopped; its credential no longer works"], at: now)
        return true
    }

    /// Retires the agents whose retirement was asked for before `requestedBefore` and that never confirmed
    /// that their runs stopped (they were offline, say): those runs end `canceled`, saying so. Returns the
    /// agents retired.
    public func finishOverdueRetirements(requestedBefore: Int64, now: Int64) async throws -> [(id: String, zoneID: String)] {
        try await change { db, events in
            let overdue = try await db.raw(
                """
                SELECT id, zone_id FROM agents
                WHERE retire_requested_at IS NOT NULL AND retire_requested_at < \(bind: requestedBefore) AND retired_at IS NULL
                """
            ).all().map { (id: try $0.decode(column: "id", as: String.self), zoneID: try $0.decode(column: "zone_id", as: String.self)) }
            for agent in overdue {
                let runs = try await db.raw(
                    SQLQueryString(Self.runSelect) + " WHERE r.agent_id = \(bind: agent.id) AND r.status IN ('dispatched', 'running', 'recovering')"
                ).all().map(Self.run(from:)).map(RunRef.init)
                let reason = "agent retired; it did not confirm that it stopped the run"
                _ = try await Self.moveRuns(
                    db, runs, .abandon, set: "reason = \(bind: reason), finished_at = \(bind: now)", actor: .system,
                    detail: ["reason": reason], now: now, events: events)
                try await Self.finishRetirement(db, agentID: agent.id, now: now, events: events)
            }
            return overdue
        }
    }
}
