import KlevrCore
import SQLKit

extension Store {
    // MARK: - Zones

    public func createZone(name: String, description: String, now: Int64, actor: EventActor) async throws -> ZoneRecord {
        let zone = ZoneRecord(id: Secrets.newID(), name: name, description: description, createdAt: now, agents: 0)
        try await change { db, events in
            if try await db.raw("SELECT id FROM zones WHERE name = \(bind: name)").first() != nil {
                throw StoreError.conflict("a zone named '\(name)' already exists")
            }
            try await db.raw(
                "INSERT INTO zones (id, name, description, created_at) VALUES (\(bind: zone.id), \(bind: name), \(bind: description), \(bind: now))"
            ).run()
            events.append(.zoneCreated, actor: actor, zoneID: zone.id, subject: zone.id, detail: ["name": name], at: now)
        }
        return zone
    }

    static let zoneSelect = """
        SELECT z.*, (SELECT COUNT(*) FROM agents a WHERE a.zone_id = z.id AND a.retired_at IS NULL) AS agent_count FROM zones z
        """

    public func zones() async throws -> [ZoneRecord] {
        try await database.read { db in
            try await db.raw(SQLQueryString(Self.zoneSelect + " ORDER BY z.name")).all().map(Self.zone(from:))
        }
    }

    public func zone(named name: String) async throws -> ZoneRecord? {
        try await database.read { db in
            try await db.raw(SQLQueryString(Self.zoneSelect) + " WHERE z.name = \(bind: name)").first().map(Self.zone(from:))
        }
    }

    static func zone(from row: any SQLRow) throws -> ZoneRecord {
        ZoneRecord(
            id: try row.decode(column: "id", as: String.self), name: try row.decode(column: "name", as: String.self),
            description: try row.decode(column: "description", as: String.self),
            createdAt: try row.decode(column: "created_at", as: Int64.self),
            agents: Int(try row.decode(column: "agent_count", as: Int64.self)))
    }

    /// Deletes a zone. Without `force` a zone that still has agents or unfinished runs is kept.
    public func deleteZone(named name: String, force: Bool, now: Int64, actor: EventActor) async throws {
        try await change { db, events in
            guard let row = try await db.raw("SELECT id FROM zones WHERE name = \(bind: name)").first() else {
                throw StoreError.notFound("no zone named '\(name)'")
            }
            let id = try row.decode(column: "id", as: String.self)
            if !force {
                let agents = try await db.raw("SELECT COUNT(*) AS n FROM agents WHERE zone_id = \(bind: id) AND retired_at IS NULL").first()
                let pending = try await db.raw(
                    "SELECT COUNT(*) AS n FROM runs WHERE zone_id = \(bind: id) AND status IN ('scheduled', 'queued', 'dispatched', 'running', 'recovering')"
                ).first()
                let agentCount = try agents?.decode(column: "n", as: Int64.self) ?? 0
                let pendingCount = try pending?.decode(column: "n", as: Int64.self) ?? 0
                if agentCount > 0 || pendingCount > 0 {
                    throw StoreError.conflict(
                        "zone '\(name)' has \(agentCount) agent(s) and \(pendingCount) unfinished run(s); retire them or delete with force")
                }
            }
            // Children first, so the statements work whether or not the engine enforces cascades.
            try await db.raw("DELETE FROM run_logs WHERE run_id IN (SELECT id FROM runs WHERE zone_id = \(bind: id))").run()
            try await db.raw("DELETE FROM runs WHERE zone_id = \(bind: id)").run()
            try await Self.deleteTaskCallbacks(db, zoneID: id)
            try await db.raw("DELETE FROM tasks WHERE zone_id = \(bind: id)").run()
            try await db.raw("DELETE FROM agents WHERE zone_id = \(bind: id)").run()
            try await db.raw("DELETE FROM enroll_keys WHERE zone_id = \(bind: id)").run()
            try await db.raw("DELETE FROM zone_leases WHERE zone_id = \(bind: id)").run()
            // The zone's own credentials go with it (global ones stay).
            try await db.raw("DELETE FROM credentials WHERE scope = \(bind: id)").run()
            try await db.raw("DELETE FROM zones WHERE id = \(bind: id)").run()
            // The zone's events stay: they are its history and the audit trail.
            events.append(.zoneDeleted, actor: actor, zoneID: id, subject: id, detail: ["name": name, "force": String(force)], at: now)
        }
    }

    // MARK: - Enrollment keys

    /// Stores a new enrollment key for a zone (by its hash).
    public func createEnrollKey(zoneName: String, keyHash: String, prefix: String, now: Int64, expiresAt: Int64?, actor: EventActor)
        async throws -> EnrollKeyRecord
    {
        try await change { db, events in
            let key = try await Self.insertEnrollKey(db, zoneName: zoneName, keyHash: keyHash, prefix: prefix, now: now, expiresAt: expiresAt)
            events.append(.enrollKeyCreated, actor: actor, zoneID: key.zoneID, subject: key.id, detail: Self.detail(key), at: now)
            return key
        }
    }

    static func detail(_ key: EnrollKeyRecord) -> [String: String] {
        var detail = ["prefix": key.prefix]
        if let expiresAt = key.expiresAt { detail["expiresAt"] = String(expiresAt) }
        return detail
    }

    static func insertEnrollKey(
        _ db: any SQLDatabase, zoneName: String, keyHash: String, prefix: String, now: Int64, expiresAt: Int64?
    ) async throws -> EnrollKeyRecord {
        guard let zone = try await db.raw("SELECT id FROM zones WHERE name = \(bind: zoneName)").first() else {
            throw StoreError.notFound("no zone named '\(zoneName)'")
        }
        let record = EnrollKeyRecord(
            id: Secrets.newID(), zoneID: try zone.decode(column: "id", as: String.self), zoneName: zoneName, prefix: prefix,
            createdAt: now, expiresAt: expiresAt, revokedAt: nil)
        try await db.raw(
            """
            INSERT INTO enroll_keys (id, zone_id, key_hash, prefix, created_at, expires_at)
            VALUES (\(bind: record.id), \(bind: record.zoneID), \(bind: keyHash), \(bind: prefix), \(bind: now), \(bind: expiresAt))
            """
        ).run()
        return record
    }

    public func enrollKeys(zoneName: String) async throws -> [EnrollKeyRecord] {
        try await database.read { db in
            guard try await db.raw("SELECT id FROM zones WHERE name = \(bind: zoneName)").first() != nil else {
                throw StoreError.notFound("no zone named '\(zoneName)'")
            }
            return try await db.raw(
                """
                SELECT k.*, z.name AS zone_name FROM enroll_keys k JOIN zones z ON z.id = k.zone_id
                WHERE z.name = \(bind: zoneName) ORDER BY k.created_at, k.id
                """
            ).all().map(Self.enrollKey(from:))
        }
    }

    static func enrollKey(from row: any SQLRow) throws -> EnrollKeyRecord {
        EnrollKeyRecord(
            id: try row.decode(column: "id", as: String.self), zoneID: try row.decode(column: "zone_id", as: String.self),
            zoneName: try row.decode(column: "zone_name", as: String.self), prefix: try row.decode(column: "prefix", as: String.self),
            createdAt: try row.decode(column: "created_at", as: Int64.self),
            expiresAt: try row.decode(column: "expires_at", as: Int64?.self),
            revokedAt: try row.decode(column: "revoked_at", as: Int64?.self))
    }

    /// Revokes a key of a zone. Revoking twice is not an error.
    public func revokeEnrollKey(zoneName: String, id: String, now: Int64, actor: EventActor) async throws {
        try await change { db, events in
            try await Self.revokeEnrollKey(db, zoneName: zoneName, id: id, now: now, actor: actor, events: events)
        }
    }

    static func revokeEnrollKey(
        _ db: any SQLDatabase, zoneName: String, id: String, now: Int64, actor: EventActor, events: EventWriter, rotated: Bool = false
    ) async throws {
        guard
            let key = try await db.raw(
                "SELECT k.id, k.zone_id FROM enroll_keys k JOIN zones z ON z.id = k.zone_id WHERE k.id = \(bind: id) AND z.name = \(bind: zoneName)"
            ).first()
        else { throw StoreError.notFound("zone '\(zoneName)' has no enrollment key \(id)") }
        let revoked = try await db.raw(
            "UPDATE enroll_keys SET revoked_at = \(bind: now) WHERE id = \(bind: id) AND revoked_at IS NULL RETURNING id"
        ).first()
        if revoked != nil && !rotated {
            events.append(.enrollKeyRevoked, actor: actor, zoneID: try key.decode(column: "zone_id", as: String.self), subject: id, at: now)
        }
    }

    /// Replaces a key by a new one with the same expiry policy, in one transaction.
    public func rotateEnrollKey(
        zoneName: String, id: String, newKeyHash: String, prefix: String, now: Int64, expiresAt: Int64?, actor: EventActor
    ) async throws -> EnrollKeyRecord {
        try await change { db, events in
            try await Self.revokeEnrollKey(db, zoneName: zoneName, id: id, now: now, actor: actor, events: events, rotated: true)
            let key = try await Self.insertEnrollKey(db, zoneName: zoneName, keyHash: newKeyHash, prefix: prefix, now: now, expiresAt: expiresAt)
            var detail = Self.detail(key)
            detail["replaces"] = id
            events.append(.enrollKeyRotated, actor: actor, zoneID: key.zoneID, subject: key.id, detail: detail, at: now)
            return key
        }
    }

    /// The zone a key admits to, when the key exists, belongs to that zone, is not revoked and has not expired.
    public func validEnrollKeyZone(zoneName: String, keyHash: String, now: Int64) async throws -> ZoneRecord? {
        try await database.read { db in
            guard
                try await db.raw(
                    """
                    SELECT k.id FROM enroll_keys k JOIN zones z ON z.id = k.zone_id
                    WHERE z.name = \(bind: zoneName) AND k.key_hash = \(bind: keyHash) AND k.revoked_at IS NULL
                    AND (k.expires_at IS NULL OR k.expires_at > \(bind: now))
                    """
                ).first() != nil
            else { return nil }
            return try await db.raw(SQLQueryString(Self.zoneSelect) + " WHERE z.name = \(bind: zoneName)").first().map(Self.zone(from:))
        }
    }
}
