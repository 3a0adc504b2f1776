import Foundation
import KlevrAPI
import KlevrCore
import KlevrStore

/// Webhooks: admins create, change, rotate and delete them; operators and admins read them and their
/// deliveries (a URL may carry a receiver's token, so viewers do not). Secrets are answered at creation and
/// rotation only.
extension ManagerAPI {
    func listWebhooks(_ input: Operations.ListWebhooks.Input) async throws -> Operations.ListWebhooks.Output {
        .ok(.init(body: .json(.init(items: try await store.webhooks().map(Self.view), nextCursor: nil))))
    }

    func createWebhook(_ input: Operations.CreateWebhook.Input) async throws -> Operations.CreateWebhook.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("the body must be JSON") }
        let context = try context
        var errors: [ProblemDocument.FieldError] = []
        let url = Self.checkWebhookURL(body.url, errors: &errors)
        let description = Self.checkWebhookDescription(body.description, errors: &errors)
        let kinds = Self.checkWebhookKinds(body.kinds, errors: &errors)
        var secret = WebhookSecret.generate()
        if let given = body.secret {
            do {
                secret = try WebhookSecret(parsing: given)
            } catch {
                errors.append(.init(field: "secret", message: error.description))
            }
        }
        if let zone = body.zone, !Validation.isValidName(zone) { errors.append(.init(field: "zone", message: "is not a zone name")) }
        if !errors.isEmpty { throw Problem.invalid(errors) }
        var zoneID: String?
        if let zone = body.zone { zoneID = try await self.zone(named: zone).id }
        let now = Clock.nowMillis()
        let id = Secrets.newID()
        let record = WebhookRecord(
            id: id, url: url, description: description ?? "", kinds: kinds ?? .all, zoneID: zoneID, enabled: body.enabled ?? true,
            createdAt: now, updatedAt: now, createdBy: context.actor.name)
        let stored = try await store.createWebhook(record, sealedSecret: try manager.sealWebhookSecret(secret, webhookID: id), actor: context.actor)
        return .created(.init(body: .json(.init(webhook: Self.view(stored), secret: secret.text))))
    }

    func getWebhook(_ input: Operations.GetWebhook.Input) async throws -> Operations.GetWebhook.Output {
        .ok(.init(body: .json(Self.view(try await webhook(try Self.id(input.path.id))))))
    }

    func updateWebhook(_ input: Operations.UpdateWebhook.Input) async throws -> Operations.UpdateWebhook.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("the body must be JSON") }
        let id = try Self.id(input.path.id)
        var errors: [ProblemDocument.FieldError] = []
        var update = WebhookUpdate()
        if let url = body.url { update.url = Self.checkWebhookURL(url, errors: &errors) }
        update.description = Self.checkWebhookDescription(body.description, errors: &errors)
        update.kinds = Self.checkWebhookKinds(body.kinds, errors: &errors)
        update.enabled = body.enabled
        if let zone = body.zone, !zone.isEmpty, !Validation.isValidName(zone) { errors.append(.init(field: "zone", message: "is not a zone name")) }
        if !errors.isEmpty { throw Problem.invalid(errors) }
        if let zone = body.zone { update.zoneID = .some(zone.isEmpty ? nil : try await self.zone(named: zone).id) }
        let updated = try await store.updateWebhook(id: id, update, now: Clock.nowMillis(), actor: try context.actor)
        return .ok(.init(body: .json(Self.view(updated))))
    }

    func deleteWebhook(_ input: Operations.DeleteWebhook.Input) async throws -> Operations.DeleteWebhook.Output {
        try await store.deleteWebhook(id: try Self.id(input.path.id), now: Clock.nowMillis(), actor: try context.actor)
        return .noContent(.init())
    }

    func rotateWebhookSecret(_ input: Operations.RotateWebhookSecret.Input) async throws -> Operations.RotateWebhookSecret.Output {
        let id = try Self.id(input.path.id)
        let secret = WebhookSecret.generate()
        let webhook = try await store.rotateWebhookSecret(
            id: id, sealedSecret: try manager.sealWebhookSecret(secret, webhookID: id), now: Clock.nowMillis(), actor: try context.actor)
        return .ok(.init(body: .json(.init(webhook: Self.view(webhook), secret: secret.text))))
    }

    func listWebhookDeliveries(_ input: Operations.ListWebhookDeliveries.Input) async throws -> Operations.ListWebhookDeliveries.Output {
        let webhook = try await webhook(try Self.id(input.path.id))
        let limit = try Self.pageLimit(input.query.limit)
        let status = try input.query.status.map { status in
            guard let value = WebhookDeliveryStatus(rawValue: status.rawValue) else { throw Problem.invalid("status", "is not a delivery status") }
            return value
        }
        let deliveries = try await store.webhookDeliveries(webhookID: webhook.id, status: status, before: try Self.cursor(input.query.cursor), limit: limit)
        let next = deliveries.count == limit ? deliveries.last.map { Cursor(createdAt: $0.createdAt, id: $0.id).text } : nil
        return .ok(.init(body: .json(.init(items: try deliveries.map(Self.view), nextCursor: next))))
    }

    func redeliverWebhook(_ input: Operations.RedeliverWebhook.Input) async throws -> Operations.RedeliverWebhook.Output {
        let delivery = try await store.redeliverWebhook(
            webhookID: try Self.id(input.path.id), deliveryID: try Self.id(input.path.deliveryId), now: Clock.nowMillis(), actor: try context.actor)
        return .created(.init(body: .json(try Self.view(delivery))))
    }

    /// A task's callback: its URL checked as a webhook's, a new secret sealed for a new webhook id.
    func taskCallback(url: String) throws -> (callback: TaskCallback, secret: WebhookSecret) {
        guard Self.isValidWebhookURL(url) else {
            throw Problem.invalid(
                "callbackUrl", "must be an http:// or https:// URL of at most \(Self.webhookURLMaximumLength) characters, without user info or fragment")
        }
        let secret = WebhookSecret.generate()
        let webhookID = Secrets.newID()
        return (TaskCallback(webhookID: webhookID, url: url, sealedSecret: try manager.sealWebhookSecret(secret, webhookID: webhookID)), secret)
    }

    // MARK: - Checks

    /// The grammar of `WebhookURL` in the document: http or https, a host name or bracketed IPv6 address, an
    /// optional port, then path and query in RFC 3986 characters. The manager calls any such address (SSRF is
    /// in the admin's hands, see docs/webhooks.md); other schemes never.
    static let webhookURLPattern =
        #"^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?([/?]([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?$"#
    static let webhookURLMaximumLength = 2048

    static func isValidWebhookURL(_ url: String) -> Bool {
        guard url.utf8.count <= webhookURLMaximumLength, let regex = try? Regex(webhookURLPattern) else { return false }
        return (try? regex.wholeMatch(in: url)) != nil
    }

    static func checkWebhookURL(_ url: String, errors: inout [ProblemDocument.FieldError]) -> String {
        if !isValidWebhookURL(url) {
            errors.append(
                .init(field: "url", message: "must be an http:// or https:// URL of at most \(webhookURLMaximumLength) characters, without user info or fragment"))
        }
        return url
    }

    static func checkWebhookDescription(_ description: String?, errors: inout [ProblemDocument.FieldError]) -> String? {
        if let description, description.unicodeScalars.count > 1000 { errors.append(.init(field: "description", message: "at most 1000 characters")) }
        return description
    }

    static func checkWebhookKinds(_ kinds: [String]?, errors: inout [ProblemDocument.FieldError]) -> EventKindFilter? {
        guard let kinds else { return nil }
        do {
            return try EventKindFilter(parsing: kinds)
        } catch {
            errors.append(.init(field: "kinds", message: error.description))
            return nil
        }
    }

    // MARK: - Views

    func webhook(_ id: String) async throws -> WebhookRecord {
        guard let webhook = try await store.webhook(id: id) else { throw Problem.notFound("no webhook \(id)") }
        return webhook
    }

    /// A webhook as the API shows it: never its secret.
    static func view(_ webhook: WebhookRecord) -> Components.Schemas.Webhook {
        .init(
            id: webhook.id, url: webhook.url, description: webhook.description, kinds: webhook.kinds.patterns,
            zone: webhook.zoneName ?? webhook.zoneID, enabled: webhook.enabled, createdAt: webhook.createdAt, updatedAt: webhook.updatedAt,
            createdBy: webhook.createdBy)
    }

    static func view(_ delivery: WebhookDeliveryRecord) throws -> Components.Schemas.WebhookDelivery {
        guard let status = Components.Schemas.WebhookDeliveryStatus(rawValue: delivery.status.rawValue) else {
            throw StoreError.corrupt("delivery \(delivery.id) has a status the API document does not list")
        }
        return .init(
            id: delivery.id, webhookId: delivery.webhookID, eventId: delivery.eventID, eventKind: delivery.eventKind, messageId: delivery.messageID,
            status: status,
            attempts: delivery.attempts.map {
                .init(attempt: $0.attempt, at: $0.at, statusCode: $0.statusCode, durationMillis: $0.durationMillis, error: $0.error)
            },
            createdAt: delivery.createdAt, nextAttemptAt: delivery.nextAttemptAt, redeliveryOf: delivery.redeliveryOf)
    }
}
