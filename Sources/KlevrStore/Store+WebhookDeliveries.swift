import Foundation
import KlevrCore
import SQLKit

/// The webhook delivery queue: fed from the event log by a stored cursor, claimed with leases, every attempt
/// recorded (see WebhookDispatcher in KlevrManager and docs/webhooks.md).
extension Store {
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
