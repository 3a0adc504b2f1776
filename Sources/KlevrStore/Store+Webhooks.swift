import Foundation
import KlevrCore
import SQLKit

/// A stored webhook: where events of some kinds (and zone) are delivered. Its secret is stored sealed and is
/// not part of the record; ``Store/webhookJobs(now:limit:leaseMillis:)`` hands it to the deliverer.
public struct WebhookRecord: Sendable, Equatable {
    public var id: String
    public var url: String
    public var description: String
    public var kinds: EventKindFilter
    /// The zone whose events are delivered; nil: every event, also those of no zone.
    public var zoneID: String?
    /// The zone's name, while it exists.
    public var zoneName: String?
    public var enabled: Bool
    public var createdAt: Int64
    public var updatedAt: Int64
    public var createdBy: String
    /// Only events with a larger id are delivered (the last event when the webhook was created).
    public var startEventID: Int64
    /// The task whose callback URL this is (its run events only); nil for a webhook of the API.
    public var taskID: String?

    public init(
        id: String, url: String, description: String, kinds: EventKindFilter, zoneID: String?, zoneName: String? = nil, enabled: Bool,
        createdAt: Int64, updatedAt: Int64, createdBy: String, startEventID: Int64 = 0, taskID: String? = nil
    ) {
        self.id = id
        self.url = url
        self.description = description
        self.kinds = kinds
        self.zoneID = zoneID
        self.zoneName = zoneName
        self.enabled = enabled
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.createdBy = createdBy
        self.startEventID = startEventID
        self.taskID = taskID
    }

    /// Whether an event is for this webhook: after its creation, of a selected kind and zone, and for a
    /// task's callback, a run event of that task.
    public func wants(_ event: EventRecord) -> Bool {
        guard enabled, event.id > startEventID, kinds.matches(event.kind) else { return false }
        if let zoneID, event.zoneID != zoneID { return false }
        if let taskID, event.detail["task"] != taskID { return false }
        return true
    }
}

/// Where a delivery stands.
public enum WebhookDeliveryStatus: String, Sendable, CaseIterable {
    /// Not delivered yet; attempted when `nextAttemptAt` comes.
    case pending
    /// A 2xx answer was received.
    case succeeded
    /// Every attempt failed and the retry window has passed.
    case failed
}

/// One attempt to deliver.
public struct WebhookAttemptRecord: Sendable, Equatable {
    /// 1 for the first attempt.
    public var attempt: Int
    public var at: Int64
    /// The HTTP status of the answer; nil when there was none (connection refused, timeout).
    public var statusCode: Int?
    public var durationMillis: Int64
    /// Why it failed; nil for a 2xx answer.
    public var error: String?

    public init(attempt: Int, at: Int64, statusCode: Int?, durationMillis: Int64, error: String?) {
        self.attempt = attempt
        self.at = at
        self.statusCode = statusCode
        self.durationMillis = durationMillis
        self.error = error
    }
}

/// A stored delivery of one event to one webhook, with its attempts.
public struct WebhookDeliveryRecord: Sendable, Equatable {
    public var id: String
    public var webhookID: String
    public var eventID: Int64
    public var eventKind: String
    /// The `webhook-id` header: the same for every attempt, and for a redelivery of the same event.
    public var messageID: String
    public var status: WebhookDeliveryStatus
    public var attempts: [WebhookAttemptRecord]
    public var createdAt: Int64
    public var nextAttemptAt: Int64?
    /// The delivery this one repeats (a redelivery).
    public var redeliveryOf: String?
}

/// A delivery to make now, claimed by one deliverer until `claimedUntil`.
public struct WebhookJob: Sendable, Equatable {
    public var deliveryID: String
    public var webhookID: String
    public var messageID: String
    /// The exact body to send.
    public var payload: String
    public var url: String
    /// The webhook's secret as sealed at rest (base64).
    public var sealedSecret: String
    /// Attempts made before this one.
    public var attemptsMade: Int
    public var firstAttemptAt: Int64?
    public var claimedUntil: Int64
}

/// A delivery to enqueue.
public struct NewWebhookDelivery: Sendable, Equatable {
    public var webhookID: String
    public var eventID: Int64
    public var eventKind: String
    public var payload: String

    public init(webhookID: String, eventID: Int64, eventKind: String, payload: String) {
        self.webhookID = webhookID
        self.eventID = eventID
        self.eventKind = eventKind
        self.payload = payload
    }
}

/// A task's callback URL as stored with the task: a webhook of its run events only, not listed with the others.
public struct TaskCallback: Sendable, Equatable {
    public var webhookID: String
    public var url: String
    /// The callback's secret sealed for its webhook id (base64).
    public var sealedSecret: String

    public init(webhookID: String, url: String, sealedSecret: String) {
        self.webhookID = webhookID
        self.url = url
        self.sealedSecret = sealedSecret
    }

    /// The webhook row for the task: every run event of that task, whatever its zone.
    func webhook(taskID: String, createdAt: Int64, createdBy: String) throws -> WebhookRecord {
        WebhookRecord(
            id: webhookID, url: url, description: "callback of task \(taskID)", kinds: try EventKindFilter(parsing: ["run"]), zoneID: nil,
            enabled: true, createdAt: createdAt, updatedAt: createdAt, createdBy: createdBy, taskID: taskID)
    }
}

/// Changes to a webhook's fields; nil leaves a field as it is.
public struct WebhookUpdate: Sendable, Equatable {
    public var url: String?
    public var description: String?
    public var kinds: EventKindFilter?
    /// `.some(nil)` removes the zone filter.
    public var zoneID: String??
    public var enabled: Bool?

    public init(url: String? = nil, description: String? = nil, kinds: EventKindFilter? = nil, zoneID: String?? = nil, enabled: Bool? = nil) {
        self.url = url
        self.description = description
        self.kinds = kinds
        self.zoneID = zoneID
        self.enabled = enabled
    }
}

extension Store {
    /// At most this many webhooks (task callbacks not counted).
    public static let maximumWebhooks = 1_000
    /// The wake-up key signalled when deliveries are queued.
    public static let webhookDeliveriesKey = "webhook-deliveries"

    // MARK: - Webhooks

    static let webhookSelect = "SELECT w.*, z.name AS zone_name FROM webhooks w LEFT JOIN zones z ON z.id = w.zone_id"

    /// Stores a webhook (its secret sealed) with a `webhook.created` event that carries no secret.
    public func createWebhook(_ webhook: WebhookRecord, sealedSecret: String, actor: EventActor) async throws -> WebhookRecord {
        try await change { db, events in
            let count = try await db.raw("SELECT COUNT(*) AS n FROM webhooks WHERE task_id IS NULL").first()?.decode(column: "n", as: Int64.self) ?? 0
            guard count < Self.maximumWebhooks else { throw StoreError.conflict("there are already \(Self.maximumWebhooks) webhooks; delete one first") }
            let stored = try await Self.insertWebhook(db, webhook, sealedSecret: sealedSecret)
            events.append(
                .webhookCreated, actor: actor, zoneID: webhook.zoneID ?? "", subject: webhook.id, detail: Self.detail(stored), at: webhook.createdAt)
            return stored
        }
    }

    /// Inserts a webhook (also a task's callback, in the task's transaction); its start is the last event.
    static func insertWebhook(_ db: any SQLDatabase, _ webhook: WebhookRecord, sealedSecret: String) async throws -> WebhookRecord {
        var stored = webhook
        stored.startEventID = try await db.raw("SELECT COALESCE(MAX(id), 0) AS id FROM event_log").first()?.decode(column: "id", as: Int64.self) ?? 0
        if let zoneID = webhook.zoneID {
            guard let zone = try await db.raw("SELECT name FROM zones WHERE id = \(bind: zoneID)").first() else {
                throw StoreError.notFound("no zone \(zoneID)")
            }
            stored.zoneName = try zone.decode(column: "name", as: String.self)
        }
        try await db.raw(
            """
            INSERT INTO webhooks (id, url, description, kinds, zone_id, enabled, secret_sealed, created_at, updated_at, created_by, start_event_id, task_id)
            VALUES (\(bind: webhook.id), \(bind: webhook.url), \(bind: webhook.description), \(bind: try encodeJSON(webhook.kinds)),
            \(bind: webhook.zoneID), \(bind: webhook.enabled ? Int64(1) : Int64(0)), \(bind: sealedSecret), \(bind: webhook.createdAt),
            \(bind: webhook.updatedAt), \(bind: webhook.createdBy), \(bind: stored.startEventID), \(bind: webhook.taskID))
            """
        ).run()
        return stored
    }

    /// What a webhook event says about it: never its secret. The URL is kept to scheme, host and port, since a
    /// path or query may hold a receiver's token.
    static func detail(_ webhook: WebhookRecord) -> [String: String] {
        var detail = ["url": Self.origin(of: webhook.url), "enabled": String(webhook.enabled), "kinds": webhook.kinds.patterns.joined(separator: ",")]
        if let zone = webhook.zoneName ?? webhook.zoneID { detail["zone"] = zone }
        return detail
    }

    /// `scheme://host[:port]` of a URL (its text up to the first `/` after `://`).
    static func origin(of url: String) -> String {
        guard let range = url.range(of: "://") else { return "" }
        let rest = url[range.upperBound...]
        let end = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        return String(url[..<range.upperBound]) + String(rest[..<end])
    }

    /// The webhooks of the API (not task callbacks), oldest first.
    public func webhooks() async throws -> [WebhookRecord] {
        try await database.read { db in
            try await db.raw(SQLQueryString(Self.webhookSelect + " WHERE w.task_id IS NULL ORDER BY w.created_at, w.id")).all().map(Self.webhook(from:))
        }
    }

    /// One webhook of the API (a task callback is not found here).
    public func webhook(id: String) async throws -> WebhookRecord? {
        try await database.read { db in
            try await db.raw(SQLQueryString(Self.webhookSelect) + " WHERE w.id = \(bind: id) AND w.task_id IS NULL").first().map(Self.webhook(from:))
        }
    }

    /// The enabled webhooks that are not task callbacks, and the callbacks of these tasks.
    public func activeWebhooks(taskIDs: Set<String>) async throws -> [WebhookRecord] {
        try await database.read { db in
            var query = SQLQueryString(Self.webhookSelect) + " WHERE w.enabled = 1 AND (w.task_id IS NULL"
            if !taskIDs.isEmpty { query = query + " OR w.task_id IN (\(binds: Array(taskIDs)))" }
            return try await db.raw(query + ")").all().map(Self.webhook(from:))
        }
    }

    /// The callback of a task, if it has one.
    public func taskCallback(taskID: String) async throws -> WebhookRecord? {
        try await database.read { db in
            try await db.raw(SQLQueryString(Self.webhookSelect) + " WHERE w.task_id = \(bind: taskID)").first().map(Self.webhook(from:))
        }
    }

    static func webhook(from row: any SQLRow) throws -> WebhookRecord {
        let kindsText = try row.decode(column: "kinds", as: String.self)
        let kinds: EventKindFilter
        do {
            kinds = try decodeJSON(EventKindFilter.self, kindsText)
        } catch {
            throw StoreError.corrupt("a webhook has a kind filter this build does not know: \(kindsText)")
        }
        return WebhookRecord(
            id: try row.decode(column: "id", as: String.self), url: try row.decode(column: "url", as: String.self),
            description: try row.decode(column: "description", as: String.self), kinds: kinds,
            zoneID: try row.decode(column: "zone_id", as: String?.self), zoneName: try row.decode(column: "zone_name", as: String?.self),
            enabled: try row.decode(column: "enabled", as: Int64.self) != 0, createdAt: try row.decode(column: "created_at", as: Int64.self),
            updatedAt: try row.decode(column: "updated_at", as: Int64.self), createdBy: try row.decode(column: "created_by", as: String.self),
            startEventID: try row.decode(column: "start_event_id", as: Int64.self), taskID: try row.decode(column: "task_id", as: String?.self))
    }

    /// Changes a webhook's fields, with a `webhook.updated` event naming the fields changed.
    public func updateWebhook(id: String, _ update: WebhookUpdate, now: Int64, actor: EventActor) async throws -> WebhookRecord {
        try await change { db, events in
            guard var webhook = try await db.raw(SQLQueryString(Self.webhookSelect) + " WHERE w.id = \(bind: id) AND w.task_id IS NULL").first().map(Self.webhook(from:))
            else { throw StoreError.notFound("no webhook \(id)") }
            var changed: [String] = []
            if let url = update.url, url != webhook.url { webhook.url = url; changed.append("url") }
            if let description = update.description, description != webhook.description { webhook.description = description; changed.append("description") }
            if let kinds = update.kinds, kinds != webhook.kinds { webhook.kinds = kinds; changed.append("kinds") }
            if let zoneID = update.zoneID, zoneID != webhook.zoneID {
                webhook.zoneID = zoneID
                webhook.zoneName = nil
                if let zoneID {
                    guard let zone = try await db.raw("SELECT name FROM zones WHERE id = \(bind: zoneID)").first() else {
                        throw StoreError.notFound("no zone \(zoneID)")
                    }
                    webhook.zoneName = try zone.decode(column: "name", as: String.self)
                }
                changed.append("zone")
            }
            if let enabled = update.enabled, enabled != webhook.enabled { webhook.enabled = enabled; changed.append("enabled") }
            guard !changed.isEmpty else { return webhook }
            webhook.updatedAt = now
            try await db.raw(
                """
                UPDATE webhooks SET url = \(bind: webhook.url), description = \(bind: webhook.description),
                kinds = \(bind: try Self.encodeJSON(webhook.kinds)), zone_id = \(bind: webhook.zoneID),
                enabled = \(bind: webhook.enabled ? Int64(1) : Int64(0)), updated_at = \(bind: now) WHERE id = \(bind: id)
                """
            ).run()
            var detail = Self.detail(webhook)
            detail["changed"] = changed.joined(separator: ",")
            events.append(.webhookUpdated, actor: actor, zoneID: webhook.zoneID ?? "", subject: id, detail: detail, at: now)
            return webhook
        }
    }

    /// Replaces a webhook's sealed secret, with a `webhook.updated` event (`secret: rotated`, not the secret).
    public func rotateWebhookSecret(id: String, sealedSecret: String, now: Int64, actor: EventActor) async throws -> WebhookRecord {
        try await change { db, events in
            guard var webhook = try await db.raw(SQLQueryString(Self.webhookSelect) + " WHERE w.id = \(bind: id) AND w.task_id IS NULL").first().map(Self.webhook(from:))
            else { throw StoreError.notFound("no webhook \(id)") }
            webhook.updatedAt = now
            try await db.raw("UPDATE webhooks SET secret_sealed = \(bind: sealedSecret), updated_at = \(bind: now) WHERE id = \(bind: id)").run()
            var detail = Self.detail(webhook)
            detail["secret"] = "rotated"
            events.append(.webhookUpdated, actor: actor, zoneID: webhook.zoneID ?? "", subject: id, detail: detail, at: now)
            return webhook
        }
    }

    /// Deletes a webhook with its deliveries and their attempts, with a `webhook.deleted` event.
    public func deleteWebhook(id: String, now: Int64, actor: EventActor) async throws {
        try await change { db, events in
            guard let webhook = try await db.raw(SQLQueryString(Self.webhookSelect) + " WHERE w.id = \(bind: id) AND w.task_id IS NULL").first().map(Self.webhook(from:))
            else { throw StoreError.notFound("no webhook \(id)") }
            try await Self.deleteWebhookRows(db, id: id)
            events.append(.webhookDeleted, actor: actor, zoneID: webhook.zoneID ?? "", subject: id, detail: Self.detail(webhook), at: now)
        }
    }

    /// Children first, so that it works whether or not the engine enforces cascades.
    static func deleteWebhookRows(_ db: any SQLDatabase, id: String) async throws {
        try await db.raw("DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM webhook_deliveries WHERE webhook_id = \(bind: id))").run()
        try await db.raw("DELETE FROM webhook_deliveries WHERE webhook_id = \(bind: id)").run()
        try await db.raw("DELETE FROM webhooks WHERE id = \(bind: id)").run()
    }

    /// The context a webhook's secret is sealed for, so that a sealed value copied to another row does not open.
    public static func webhookSecretContext(_ webhookID: String) -> String { "webhook-secret:" + webhookID }

    /// Re-seals every webhook secret (task callbacks too) that is not under the box's current key, inside the
    /// master key rotation's transaction. Returns how many were re-sealed.
    static func resealWebhookSecrets(_ db: any SQLDatabase, with box: SecretBox) async throws -> Int {
        var count = 0
        for row in try await db.raw("SELECT id, secret_sealed FROM webhooks").all() {
            let id = try row.decode(column: "id", as: String.self)
            guard let sealed = Data(base64Encoded: try row.decode(column: "secret_sealed", as: String.self)) else {
                throw StoreError.corrupt("webhook \(id) holds a secret that is not base64")
            }
            guard try box.needsReseal(sealed) else { continue }
            let resealed = try box.reseal(sealed, context: webhookSecretContext(id))
            try await db.raw("UPDATE webhooks SET secret_sealed = \(bind: resealed.base64EncodedString()) WHERE id = \(bind: id)").run()
            count += 1
        }
        return count
    }

    /// Deletes the callbacks of a zone's tasks with their deliveries (the zone and its tasks are being deleted).
    static func deleteTaskCallbacks(_ db: any SQLDatabase, zoneID: String) async throws {
        let rows = try await db.raw(
            "SELECT w.id FROM webhooks w JOIN tasks t ON t.id = w.task_id WHERE t.zone_id = \(bind: zoneID)"
        ).all()
        for row in rows { try await deleteWebhookRows(db, id: try row.decode(column: "id", as: String.self)) }
    }

    // MARK: - Following the event log

    /// The id of the last event the deliveries were queued for.
    public func webhookCursor() async throws -> Int64 {
        try await database.read { db in
            try await db.raw("SELECT event_id FROM webhook_cursor WHERE name = 'events'").first()?.decode(column: "event_id", as: Int64.self) ?? 0
        }
    }

    /// Queues deliveries for the events after `from` up to `to` and moves the cursor from `from` to `to`, in one
    /// transaction and only if the cursor still is at `from` (another manager on the same database, or an
    /// earlier pass, may have moved it): a restart neither loses nor repeats a delivery.
    /// - Returns: whether this call moved the cursor (false: nothing was queued).
    @discardableResult
    public func enqueueWebhookDeliveries(_ deliveries: [NewWebhookDelivery], from: Int64, to: Int64, now: Int64) async throws -> Bool {
        let moved = try await database.transaction { db in
            let updated = try await db.raw(
                "UPDATE webhook_cursor SET event_id = \(bind: to) WHERE name = 'events' AND event_id = \(bind: from) RETURNING event_id"
            ).first()
            guard updated != nil else { return false }
            for start in stride(from: 0, to: deliveries.count, by: 100) {
                var query = SQLQueryString(
                    "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_kind, message_id, payload, status, attempts, created_at, next_attempt_at) VALUES "
                )
                for (index, delivery) in deliveries[start..<min(start + 100, deliveries.count)].enumerated() {
                    if index > 0 { query = query + ", " }
                    query = query
                        + """
                        (\(bind: Secrets.newID()), \(bind: delivery.webhookID), \(bind: delivery.eventID), \(bind: delivery.eventKind),
                        \(bind: StandardWebhooks.newMessageID()), \(bind: delivery.payload), 'pending', 0, \(bind: now), \(bind: now))
                        """
                }
                try await db.raw(query).run()
            }
            return true
        }
        if moved && !deliveries.isEmpty { await hub.signal([Self.webhookDeliveriesKey]) }
        return moved
    }

    // MARK: - Delivering

    /// Claims up to `limit` pending deliveries that are due, of enabled webhooks, oldest first: each is
    /// claimed for `leaseMillis` (its next attempt time moves past the lease, compare-and-set), so that two
    /// deliverers never send one at once, and a manager that stops mid-attempt leaves it due again after the lease.
    public func webhookJobs(now: Int64, limit: Int, leaseMillis: Int64) async throws -> [WebhookJob] {
        guard limit > 0 else { return [] }
        return try await database.transaction { db in
            let rows = try await db.raw(
                """
                SELECT d.id, d.webhook_id, d.message_id, d.payload, d.attempts, d.first_attempt_at, d.next_attempt_at, w.url, w.secret_sealed
                FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
                WHERE d.status = 'pending' AND d.next_attempt_at <= \(bind: now) AND w.enabled = 1
                ORDER BY d.next_attempt_at, d.id LIMIT \(bind: Int64(limit))
                """
            ).all()
            var jobs: [WebhookJob] = []
            for row in rows {
                let id = try row.decode(column: "id", as: String.self)
                let due = try row.decode(column: "next_attempt_at", as: Int64.self)
                let claimed = try await db.raw(
                    """
                    UPDATE webhook_deliveries SET next_attempt_at = \(bind: now + leaseMillis)
                    WHERE id = \(bind: id) AND status = 'pending' AND next_attempt_at = \(bind: due) RETURNING id
                    """
                ).first()
                guard claimed != nil else { continue }
                jobs.append(
                    WebhookJob(
                        deliveryID: id, webhookID: try row.decode(column: "webhook_id", as: String.self),
                        messageID: try row.decode(column: "message_id", as: String.self), payload: try row.decode(column: "payload", as: String.self),
                        url: try row.decode(column: "url", as: String.self), sealedSecret: try row.decode(column: "secret_sealed", as: String.self),
                        attemptsMade: Int(try row.decode(column: "attempts", as: Int64.self)),
                        firstAttemptAt: try row.decode(column: "first_attempt_at", as: Int64?.self), claimedUntil: now + leaseMillis))
            }
            return jobs
        }
    }

    /// When the next pending delivery of an enabled webhook falls due (a retry's time, or a claim's lease end).
    public func nextWebhookAttemptAt() async throws -> Int64? {
        try await database.read { db in
            try await db.raw(
                """
                SELECT MIN(d.next_attempt_at) AS due FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
                WHERE d.status = 'pending' AND w.enabled = 1
                """
            ).first()?.decode(column: "due", as: Int64?.self)
        }
    }

    /// Records an attempt of a claimed delivery and what follows: `succeeded`, another attempt at
    /// `nextAttemptAt`, or `failed` when it is nil. Only the claim's holder records it (the attempt count is the
    /// compare-and-set); returns false when the delivery had moved on (deleted, or claimed again after the lease).
    @discardableResult
    public func recordWebhookAttempt(
        _ job: WebhookJob, _ attempt: WebhookAttemptRecord, succeeded: Bool, nextAttemptAt: Int64?
    ) async throws -> Bool {
        try await database.transaction { db in
            let status: WebhookDeliveryStatus = succeeded ? .succeeded : (nextAttemptAt == nil ? .failed : .pending)
            let updated = try await db.raw(
                """
                UPDATE webhook_deliveries SET status = \(bind: status.rawValue), attempts = \(bind: Int64(attempt.attempt)),
                next_attempt_at = \(bind: status == .pending ? nextAttemptAt : nil), last_attempt_at = \(bind: attempt.at),
                first_attempt_at = COALESCE(first_attempt_at, \(bind: attempt.at))
                WHERE id = \(bind: job.deliveryID) AND status = 'pending' AND attempts = \(bind: Int64(job.attemptsMade))
                AND next_attempt_at = \(bind: job.claimedUntil) RETURNING id
                """
            ).first()
            guard updated != nil else { return false }
            try await db.raw(
                """
                INSERT INTO webhook_attempts (delivery_id, attempt, at, status_code, duration_ms, error)
                VALUES (\(bind: job.deliveryID), \(bind: Int64(attempt.attempt)), \(bind: attempt.at), \(bind: attempt.statusCode.map(Int64.init)),
                \(bind: attempt.durationMillis), \(bind: attempt.error))
                """
            ).run()
            return true
        }
    }

    // MARK: - Listing and redelivering

    /// A webhook's deliveries, newest first, with their attempts.
    public func webhookDeliveries(webhookID: String, status: WebhookDeliveryStatus? = nil, before cursor: Cursor?, limit: Int) async throws
        -> [WebhookDeliveryRecord]
    {
        try await database.read { db in
            var query = SQLQueryString("SELECT * FROM webhook_deliveries WHERE webhook_id = \(bind: webhookID)")
            if let status { query = query + " AND status = \(bind: status.rawValue)" }
            if let cursor {
                query = query + " AND (created_at < \(bind: cursor.createdAt) OR (created_at = \(bind: cursor.createdAt) AND id < \(bind: cursor.id)))"
            }
            query = query + " ORDER BY created_at DESC, id DESC LIMIT \(bind: Int64(limit))"
            var deliveries = try await db.raw(query).all().map(Self.delivery(from:))
            guard !deliveries.isEmpty else { return [] }
            let attempts = try await db.raw(
                "SELECT * FROM webhook_attempts WHERE delivery_id IN (\(binds: deliveries.map(\.id))) ORDER BY delivery_id, attempt"
            ).all()
            var byDelivery: [String: [WebhookAttemptRecord]] = [:]
            for row in attempts {
                byDelivery[try row.decode(column: "delivery_id", as: String.self), default: []].append(
                    WebhookAttemptRecord(
                        attempt: Int(try row.decode(column: "attempt", as: Int64.self)), at: try row.decode(column: "at", as: Int64.self),
                        statusCode: try row.decode(column: "status_code", as: Int64?.self).map { Int($0) },
                        durationMillis: try row.decode(column: "duration_ms", as: Int64.self), error: try row.decode(column: "error", as: String?.self)))
            }
            for index in deliveries.indices { deliveries[index].attempts = byDelivery[deliveries[index].id] ?? [] }
            return deliveries
        }
    }

    static func delivery(from row: any SQLRow) throws -> WebhookDeliveryRecord {
        let statusText = try row.decode(column: "status", as: String.self)
        guard let status = WebhookDeliveryStatus(rawValue: statusText) else { throw StoreError.corrupt("unknown delivery status '\(statusText)'") }
        return WebhookDeliveryRecord(
            id: try row.decode(column: "id", as: String.self), webhookID: try row.decode(column: "webhook_id", as: String.self),
            eventID: try row.decode(column: "event_id", as: Int64.self), eventKind: try row.decode(column: "event_kind", as: String.self),
            messageID: try row.decode(column: "message_id", as: String.self), status: status, attempts: [],
            createdAt: try row.decode(column: "created_at", as: Int64.self),
            nextAttemptAt: try status == .pending ? row.decode(column: "next_attempt_at", as: Int64?.self) : nil,
            redeliveryOf: try row.decode(column: "redelivery_of", as: String?.self))
    }

    /// Queues a new delivery of the same event with the same body and `webhook-id` (receivers that already
    /// processed it can drop it), due now, with a `webhook.redelivered` event.
    public func redeliverWebhook(webhookID: String, deliveryID: String, now: Int64, actor: EventActor) async throws -> WebhookDeliveryRecord {
        let record = try await change { db, events in
            guard let webhook = try await db.raw(SQLQueryString(Self.webhookSelect) + " WHERE w.id = \(bind: webhookID) AND w.task_id IS NULL").first().map(Self.webhook(from:))
            else { throw StoreError.notFound("no webhook \(webhookID)") }
            guard
                let original = try await db.raw(
                    "SELECT * FROM webhook_deliveries WHERE id = \(bind: deliveryID) AND webhook_id = \(bind: webhookID)"
                ).first()
            else { throw StoreError.notFound("webhook \(webhookID) has no delivery \(deliveryID)") }
            let previous = try Self.delivery(from: original)
            let record = WebhookDeliveryRecord(
                id: Secrets.newID(), webhookID: webhookID, eventID: previous.eventID, eventKind: previous.eventKind, messageID: previous.messageID,
                status: .pending, attempts: [], createdAt: now, nextAttemptAt: now, redeliveryOf: deliveryID)
            try await db.raw(
                """
                INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_kind, message_id, payload, status, attempts, created_at, next_attempt_at, redelivery_of)
                VALUES (\(bind: record.id), \(bind: webhookID), \(bind: record.eventID), \(bind: record.eventKind), \(bind: record.messageID),
                \(bind: try original.decode(column: "payload", as: String.self)), 'pending', 0, \(bind: now), \(bind: now), \(bind: deliveryID))
                """
            ).run()
            events.append(
                .webhookRedelivered, actor: actor, zoneID: webhook.zoneID ?? "", subject: webhookID,
                detail: ["delivery": record.id, "redeliveryOf": deliveryID, "eventId": String(record.eventID)], at: now)
            return record
        }
        await hub.signal([Self.webhookDeliveriesKey])
        return record
    }
}
