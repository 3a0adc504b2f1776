import Foundation
import KlevrCore
import SQLKit

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
}
