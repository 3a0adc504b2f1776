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
        try await change { db, events in
            let actor = EventActor(
                kind: .agent, id: agentID,
                name: try await db.raw("SELECT hostname FROM agents WHERE id = \(bind: agentID)").first()?.decode(column: "hostname", as: String.self)
                    ?? agentID)
            let expiresAt = now + duration
            guard let current = try await Self.lease(db, zoneID: zoneID) else {
                let inserted = try await db.raw(
                    """
                    INSERT INTO zone_leases (zone_id, holder, epoch, expires_at) VALUES (\(bind: zoneID), \(bind: agentID), 1, \(bind: expiresAt))
                    ON CONFLICT (zone_id) DO NOTHING RETURNING epoch
                    """
                ).first()
                if inserted != nil {
                    events.append(
                        .primaryElected, actor: actor, zoneID: zoneID, subject: agentID,
                        detail: ["epoch": "1", "note": "first primary of the zone"], at: now)
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
                    // make it due for delivery again now (agents never run a run twice). The first dispatch
                    // time stays as it was.
                    let handed = try await db.raw(
                        SQLQueryString(Self.runSelect) + " WHERE r.zone_id = \(bind: zoneID) AND r.status = 'dispatched'"
                    ).all().map(Self.run(from:)).map(RunRef.init)
                    _ = try await Self.moveRuns(
                        db, handed, .release, set: "delivered_at = NULL", actor: .system, detail: ["epoch": String(next)], now: now,
                        events: events)
                    try await db.raw(
                        "UPDATE runs SET cancel_sent_at = NULL WHERE zone_id = \(bind: zoneID) AND cancel_requested = 1"
                    ).run()
                    events.append(
                        .primaryRetired, actor: .system, zoneID: zoneID, subject: current.holder,
                        detail: ["epoch": String(current.epoch), "note": "lease of epoch \(current.epoch) expired"], at: now)
                    events.append(
                        .primaryElected, actor: actor, zoneID: zoneID, subject: agentID,
                        detail: ["epoch": String(next), "note": "took over after epoch \(current.epoch)"], at: now)
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

    // MARK: - Events without other writes

    /// Records an event that goes with no other write (a liveness change, a refused relay).
    public func record(
        _ kind: EventKind, actor: EventActor, zoneID: String, subject: String, detail: [String: String] = [:], now: Int64
    ) async throws {
        try await change { _, events in
            events.append(kind, actor: actor, zoneID: zoneID, subject: subject, detail: detail, at: now)
        }
    }
}
