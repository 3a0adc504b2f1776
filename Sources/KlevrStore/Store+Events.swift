import KlevrCore
import SQLKit
import Synchronization

/// The events a change appends, kept until its transaction writes them (last, just before it commits).
///
/// Writing them last keeps the event log's ids in commit order on PostgreSQL: the writer takes an advisory
/// lock only then, holds no lock anyone else waits for after it, and gives up the lock when it commits.
public final class EventWriter: Sendable {
    struct Pending: Sendable {
        var kind: EventKind
        var actor: EventActor
        var zoneID: String
        var subject: String
        var detail: [String: String]
        var at: Int64
    }

    private let pending = Mutex<[Pending]>([])
    private let wakeKeys = Mutex<Set<String>>([])

    init() {}

    /// Wake-up keys (``Store/agentKey(_:)``, ``Store/zoneKey(_:)``) signalled once this change committed:
    /// held polls that may now get work.
    public func wake(_ keys: some Sequence<String>) {
        wakeKeys.withLock { $0.formUnion(keys) }
    }

    func takeWakeKeys() -> Set<String> { wakeKeys.withLock { keys in defer { keys = [] }; return keys } }

    /// Queues an event of this change.
    public func append(
        _ kind: EventKind, actor: EventActor, zoneID: String = "", subject: String, detail: [String: String] = [:], at: Int64
    ) {
        pending.withLock { $0.append(Pending(kind: kind, actor: actor, zoneID: zoneID, subject: subject, detail: detail, at: at)) }
    }

    var count: Int { pending.withLock { $0.count } }

    func take() -> [Pending] { pending.withLock { list in defer { list = [] }; return list } }
}

/// Hooks that tests use to inject faults into the store's transactions.
public final class StoreHooks: Sendable {
    private let beforeEvents = Mutex<(@Sendable () throws -> Void)?>(nil)

    public init() {}

    /// Called inside every change's transaction after its writes and before its events are written; an
    /// error thrown here rolls the whole change back.
    public func setBeforeEventWrite(_ hook: (@Sendable () throws -> Void)?) { beforeEvents.withLock { $0 = hook } }

    func beforeEventWrite() throws { try beforeEvents.withLock { $0 }?() }
}

/// A stored event.
public struct EventRecord: Sendable, Equatable {
    public var id: Int64
    public var at: Int64
    public var kind: EventKind
    public var actor: EventActor
    public var zoneID: String
    /// The zone's name, while the zone exists.
    public var zoneName: String?
    public var subject: String
    public var detail: [String: String]
}

/// Which events to list.
public struct EventFilter: Sendable, Equatable {
    public var kinds: [EventKind] = []
    /// A zone id or name.
    public var zone: String?
    public var subject: String?
    /// An actor's id (user, token or agent) or, for users, name.
    public var actor: String?
    public var actorKinds: [EventActor.Kind] = []
    /// Events at or after this time (ms).
    public var since: Int64?
    public init() {}
}

extension Store {
    // MARK: - Changes and their events

    /// Runs `body` as one transaction whose events (queued on the writer) are written in the same
    /// transaction, after its other writes. Followers of the event stream are woken once it commits.
    public func change<T: Sendable>(_ body: @Sendable (any SQLDatabase, EventWriter) async throws -> T) async throws -> T {
        let events = EventWriter()
        let postgres = database.isPostgres
        let hooks = self.hooks
        let (value, wroteEvents) = try await database.transaction { db in
            let value = try await body(db, events)
            try hooks.beforeEventWrite()
            let written = events.take()
            try await Self.write(written, db: db, postgres: postgres)
            return (value, !written.isEmpty)
        }
        // Followers of the event log wake only for events: most changes (lease renewals, last-seen
        // times) write none, and waking the webhook follower and every event stream for them costs the
        // database two reads each.
        var keys = events.takeWakeKeys()
        if wroteEvents { keys.insert(Self.eventsKey) }
        if !keys.isEmpty { await hub.signal(keys) }
        return value
    }

    /// The wake-up key signalled after events were committed.
    public static let eventsKey = "events"
    /// The wake-up key of an agent's held poll.
    public static func agentKey(_ id: String) -> String { "agent:" + id }
    /// The wake-up key of a zone primary's held poll.
    public static func zoneKey(_ id: String) -> String { "zone:" + id }

    static func write(_ events: [EventWriter.Pending], db: any SQLDatabase, postgres: Bool) async throws {
        guard !events.isEmpty else { return }
        if postgres {
            // Ids are handed out and committed in order: a follower reading "after id N" never misses one.
            try await db.raw("SELECT pg_advisory_xact_lock(72657665)").run()
        }
        var next = try await db.raw("SELECT COALESCE(MAX(id), 0) AS id FROM event_log").first()?.decode(column: "id", as: Int64.self) ?? 0
        for start in stride(from: 0, to: events.count, by: 100) {
            var query = SQLQueryString(
                "INSERT INTO event_log (id, at, kind, actor_kind, actor_id, actor_name, client_address, zone_id, subject, detail) VALUES ")
            for (index, event) in events[start..<min(start + 100, events.count)].enumerated() {
                next += 1
                if index > 0 { query = query + ", " }
                query = query
                    + """
                    (\(bind: next), \(bind: event.at), \(bind: event.kind.rawValue), \(bind: event.actor.kind.rawValue), \(bind: event.actor.id),
                    \(bind: event.actor.name), \(bind: event.actor.address), \(bind: event.zoneID), \(bind: event.subject),
                    \(bind: try encodeJSON(event.detail)))
                    """
            }
            try await db.raw(query).run()
        }
    }

    // MARK: - Reading events

    static let eventSelect = "SELECT e.*, z.name AS zone_name FROM event_log e LEFT JOIN zones z ON z.id = e.zone_id"

    /// Events matching a filter: newest first before `before`, or oldest first after `after`.
    public func events(_ filter: EventFilter, before: Int64? = nil, after: Int64? = nil, limit: Int) async throws -> [EventRecord] {
        try await database.read { db in
            var query = SQLQueryString(Self.eventSelect) + " WHERE 1 = 1"
            if !filter.kinds.isEmpty { query = query + " AND e.kind IN (\(binds: filter.kinds.map(\.rawValue)))" }
            if let zone = filter.zone { query = query + " AND (e.zone_id = \(bind: zone) OR z.name = \(bind: zone))" }
            if let subject = filter.subject { query = query + " AND e.subject = \(bind: subject)" }
            if let actor = filter.actor {
                query = query + " AND (e.actor_id = \(bind: actor) OR (e.actor_kind IN ('user', 'token') AND e.actor_name = \(bind: actor)))"
            }
            if !filter.actorKinds.isEmpty { query = query + " AND e.actor_kind IN (\(binds: filter.actorKinds.map(\.rawValue)))" }
            if let since = filter.since { query = query + " AND e.at >= \(bind: since)" }
            if let before { query = query + " AND e.id < \(bind: before)" }
            if let after {
                query = query + " AND e.id > \(bind: after) ORDER BY e.id LIMIT \(bind: Int64(limit))"
            } else {
                query = query + " ORDER BY e.id DESC LIMIT \(bind: Int64(limit))"
            }
            return try await db.raw(query).all().map(Self.event(from:))
        }
    }

    /// The newest event's id (0 when there is none).
    public func lastEventID() async throws -> Int64 {
        try await database.read { db in
            try await db.raw("SELECT COALESCE(MAX(id), 0) AS id FROM event_log").first()?.decode(column: "id", as: Int64.self) ?? 0
        }
    }

    static func event(from row: any SQLRow) throws -> EventRecord {
        let kindText = try row.decode(column: "kind", as: String.self)
        guard let kind = EventKind(rawValue: kindText) else { throw StoreError.corrupt("unknown event kind '\(kindText)' in the event log") }
        let actorText = try row.decode(column: "actor_kind", as: String.self)
        guard let actorKind = EventActor.Kind(rawValue: actorText) else {
            throw StoreError.corrupt("unknown actor kind '\(actorText)' in the event log")
        }
        return EventRecord(
            id: try row.decode(column: "id", as: Int64.self), at: try row.decode(column: "at", as: Int64.self), kind: kind,
            actor: EventActor(
                kind: actorKind, id: try row.decode(column: "actor_id", as: String.self),
                name: try row.decode(column: "actor_name", as: String.self),
                address: try row.decode(column: "client_address", as: String?.self)),
            zoneID: try row.decode(column: "zone_id", as: String.self), zoneName: try row.decode(column: "zone_name", as: String?.self),
            subject: try row.decode(column: "subject", as: String.self),
            detail: try decodeJSON([String: String].self, try row.decode(column: "detail", as: String.self)))
    }
}
