import KlevrCore
import SQLKit

/// The answer to a lease request.
public enum LeaseOutcome: Sendable, Equatable {
    /// The caller holds the lease of `epoch` until `expiresAt`; `elected` when this request started the
    /// epoch (a new primary), false for a renewal.
    case granted(epoch: Int64, expiresAt: Int64, elected: Bool)
    /// Another agent holds an unexpired lease.
    case held(holder: String, epoch: Int64, expiresAt: Int64)
}

/// A stored zone event (primary elected or retired …).
public struct EventRecord: Sendable, Equatable {
    public var id: String
    public var kind: String
    public var zoneID: String
    public var agentID: String?
    public var epoch: Int64?
    public var detail: String
    public var at: Int64
}

/// The state of a zone's lease.
public struct LeaseRecord: Sendable, Equatable {
    public var holder: String
    public var epoch: Int64
    public var expiresAt: Int64
}

extension Store {
    // MARK: - Zone lease with a fencing epoch

    /// Grants, renews or refuses a zone's lease: a compare-and-set on the zone's lease row that works on
    /// SQLite and PostgreSQL alike. An expired lease goes to the first agent that asks, with `epoch + 1`.
    public func acquireLease(zoneID: String, agentID: String, now: Int64, duration: Int64) async throws -> LeaseOutcome {
        try await database.transaction { db in
            let expiresAt = now + duration
            guard let current = try await Self.lease(db, zoneID: zoneID) else {
                let inserted = try await db.raw(
                    """
                    INSERT INTO zone_leases (zone_id, holder, epoch, expires_at) VALUES (\(bind: zoneID), \(bind: agentID), 1, \(bind: expiresAt))
                    ON CONFLICT (zone_id) DO NOTHING RETURNING epoch
                    """
                ).first()
                if inserted != nil {
                    try await Self.recordEvent(db, kind: "primary_elected", zoneID: zoneID, agentID: agentID, epoch: 1, detail: "first primary of the zone", now: now)
                    return .granted(epoch: 1, expiresAt: expiresAt, elected: true)
                }
                let raced = try await Self.lease(db, zoneID: zoneID)
                return .held(holder: raced?.holder ?? "", epoch: raced?.epoch ?? 0, expiresAt: raced?.expiresAt ?? 0)
            }
            if current.holder == agentID && current.expiresAt > now {
                let renewed = try await db.raw(
                    """
                    UPDATE zone_leases SET expires_at = \(bind: expiresAt)
                    WHERE zone_id = \(bind: zoneID) AND holder = \(bind: agentID) AND epoch = \(bind: current.epoch) RETURNING epoch
                    """
                ).first()
                if renewed != nil { return .granted(epoch: current.epoch, expiresAt: expiresAt, elected: false) }
            } else if current.expiresAt <= now {
                let next = current.epoch + 1
                let taken = try await db.raw(
                    """
                    UPDATE zone_leases SET holder = \(bind: agentID), epoch = \(bind: next), expires_at = \(bind: expiresAt)
                    WHERE zone_id = \(bind: zoneID) AND epoch = \(bind: current.epoch) RETURNING epoch
                    """
                ).first()
                if taken != nil {
                    // Whatever the old primary was handed and no agent has started may have died with it:
                    // make it due for delivery again now (agents never run a run twice).
                    try await db.raw(
                        "UPDATE runs SET dispatched_at = 0 WHERE zone_id = \(bind: zoneID) AND status = 'dispatched'"
                    ).run()
                    try await db.raw(
                        "UPDATE runs SET cancel_sent_at = NULL WHERE zone_id = \(bind: zoneID) AND cancel_requested = 1"
                    ).run()
                    try await Self.recordEvent(
                        db, kind: "primary_retired", zoneID: zoneID, agentID: current.holder, epoch: current.epoch,
                        detail: "lease of epoch \(current.epoch) expired", now: now)
                    try await Self.recordEvent(
                        db, kind: "primary_elected", zoneID: zoneID, agentID: agentID, epoch: next, detail: "took over after epoch \(current.epoch)",
                        now: now)
                    return .granted(epoch: next, expiresAt: expiresAt, elected: true)
                }
            }
            let latest = try await Self.lease(db, zoneID: zoneID) ?? current
            return .held(holder: latest.holder, epoch: latest.epoch, expiresAt: latest.expiresAt)
        }
    }

    /// Checks that `agentID` holds the zone's unexpired lease of `epoch` and renews it, in one statement.
    /// Used inside the transaction that applies the primary's reports, so nothing from a stale epoch is
    /// ever applied.
    static func fenceAndRenew(_ db: any SQLDatabase, zoneID: String, agentID: String, epoch: Int64, now: Int64, duration: Int64) async throws -> Bool {
        try await db.raw(
            """
            UPDATE zone_leases SET expires_at = \(bind: now + duration)
            WHERE zone_id = \(bind: zoneID) AND holder = \(bind: agentID) AND epoch = \(bind: epoch) AND expires_at > \(bind: now)
            RETURNING epoch
            """
        ).first() != nil
    }

    /// Whether `agentID` holds the zone's unexpired lease of `epoch` (a check that renews nothing).
    public func holdsLease(zoneID: String, agentID: String, epoch: Int64, now: Int64) async throws -> Bool {
        try await database.read { db in
            try await db.raw(
                """
                SELECT epoch FROM zone_leases
                WHERE zone_id = \(bind: zoneID) AND holder = \(bind: agentID) AND epoch = \(bind: epoch) AND expires_at > \(bind: now)
                """
            ).first() != nil
        }
    }

    /// The zone's lease row, if any agent ever held it.
    public func lease(zoneID: String) async throws -> LeaseRecord? {
        try await database.read { db in try await Self.lease(db, zoneID: zoneID) }
    }

    static func lease(_ db: any SQLDatabase, zoneID: String) async throws -> LeaseRecord? {
        try await db.raw("SELECT holder, epoch, expires_at FROM zone_leases WHERE zone_id = \(bind: zoneID)").first().map { row in
            LeaseRecord(
                holder: try row.decode(column: "holder", as: String.self), epoch: try row.decode(column: "epoch", as: Int64.self),
                expiresAt: try row.decode(column: "expires_at", as: Int64.self))
        }
    }

    // MARK: - Events

    /// Records an event of a zone.
    public func recordEvent(kind: String, zoneID: String, agentID: String?, epoch: Int64?, detail: String, now: Int64) async throws {
        try await database.read { db in
            try await Self.recordEvent(db, kind: kind, zoneID: zoneID, agentID: agentID, epoch: epoch, detail: detail, now: now)
        }
    }

    static func recordEvent(
        _ db: any SQLDatabase, kind: String, zoneID: String, agentID: String?, epoch: Int64?, detail: String, now: Int64
    ) async throws {
        try await db.raw(
            """
            INSERT INTO events (id, kind, zone_id, agent_id, epoch, detail, at)
            VALUES (\(bind: Secrets.newID()), \(bind: kind), \(bind: zoneID), \(bind: agentID), \(bind: epoch), \(bind: detail), \(bind: now))
            """
        ).run()
    }

    /// A zone's events, newest first.
    public func events(zoneID: String, limit: Int) async throws -> [EventRecord] {
        try await database.read { db in
            try await db.raw(
                "SELECT * FROM events WHERE zone_id = \(bind: zoneID) ORDER BY at DESC, id DESC LIMIT \(bind: Int64(limit))"
            ).all().map { row in
                EventRecord(
                    id: try row.decode(column: "id", as: String.self), kind: try row.decode(column: "kind", as: String.self),
                    zoneID: try row.decode(column: "zone_id", as: String.self), agentID: try row.decode(column: "agent_id", as: String?.self),
                    epoch: try row.decode(column: "epoch", as: Int64?.self), detail: try row.decode(column: "detail", as: String.self),
                    at: try row.decode(column: "at", as: Int64.self))
            }
        }
    }
}
