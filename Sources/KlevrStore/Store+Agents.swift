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
        version: String, addresses: [String], now: Int64
    ) async throws -> String {
        let addressJSON = try Self.encodeJSON(addresses)
        return try await database.transaction { db in
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
            peerAddress: try row.decode(column: "peer_address", as: String.self),
            managerRoute: try row.decode(column: "manager_route", as: Int64.self) != 0,
            priority: Int(try row.decode(column: "priority", as: Int64.self)),
            sealKey: try row.decode(column: "seal_key", as: String.self),
            clockSkewMillis: try row.decode(column: "clock_skew_ms", as: Int64?.self))
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

    /// Retires an agent: its credential stops working and its unfinished runs are canceled.
    public func retireAgent(id: String, now: Int64) async throws {
        try await database.transaction { db in
            guard try await db.raw("SELECT id FROM agents WHERE id = \(bind: id)").first() != nil else {
                throw StoreError.notFound("no agent \(id)")
            }
            try await db.raw("UPDATE agents SET retired_at = \(bind: now) WHERE id = \(bind: id) AND retired_at IS NULL").run()
            try await db.raw(
                """
                UPDATE runs SET status = 'canceled', reason = 'agent retired', finished_at = \(bind: now)
                WHERE agent_id = \(bind: id) AND status IN ('queued', 'dispatched', 'running')
                """
            ).run()
        }
    }
}
