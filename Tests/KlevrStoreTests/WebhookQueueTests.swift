import Foundation
import KlevrCore
import KlevrStore
import SQLKit
import Testing

/// The webhook delivery queue: the event-log cursor moves once with the deliveries it queued (compare-and-set),
/// a claimed delivery is not handed out twice until its lease ends, and only the claim's holder records its
/// attempt. The same on SQLite and PostgreSQL, with times given by the test.
@Suite struct WebhookQueueTests {
    static let now: Int64 = 1_800_000_000_000

    static func webhook(enabled: Bool = true) throws -> WebhookRecord {
        WebhookRecord(
            id: Secrets.newID(), url: "http://127.0.0.1:9/", description: "", kinds: try EventKindFilter(parsing: ["zone"]), zoneID: nil,
            enabled: enabled, createdAt: now, updatedAt: now, createdBy: "admin")
    }

    @Test(arguments: Engine.available)
    func theCursorMovesOnceAndAClaimIsHeldUntilItsLeaseEnds(engine: Engine) async throws {
        try await withStore(engine) { store in
            let hook = try await store.createWebhook(try Self.webhook(), sealedSecret: "sealed", actor: .system)
            let zone = try await store.createZone(name: "zone-q", description: "", now: Self.now, actor: .system)
            let cursor = try await store.webhookCursor()
            let last = try await store.lastEventID()
            #expect(last > cursor)
            let events = try await store.events(EventFilter(), after: cursor, limit: 100)
            #expect(events.contains { $0.kind == .zoneCreated && $0.subject == zone.id })
            #expect(events.filter { hook.wants($0) }.map(\.kind) == [.zoneCreated], "the webhook's own creation is not a zone event")
            let delivery = NewWebhookDelivery(webhookID: hook.id, eventID: last, eventKind: "zone.created", payload: "{}")

            // A second pass from the same cursor (a restart, another manager) queues nothing.
            #expect(try await store.enqueueWebhookDeliveries([delivery], from: cursor, to: last, now: Self.now))
            #expect(try await store.enqueueWebhookDeliveries([delivery], from: cursor, to: last, now: Self.now) == false)
            #expect(try await store.webhookCursor() == last)
            #expect(try await store.webhookDeliveries(webhookID: hook.id, before: nil, limit: 10).count == 1)

            // Claimed once; not again while the lease holds; again after it.
            let jobs = try await store.webhookJobs(now: Self.now, limit: 10, leaseMillis: 30_000)
            #expect(jobs.count == 1)
            #expect(try await store.webhookJobs(now: Self.now + 29_999, limit: 10, leaseMillis: 30_000).isEmpty)
            let job = try #require(jobs.first)
            let reclaimed = try await store.webhookJobs(now: Self.now + 30_000, limit: 10, leaseMillis: 30_000)
            #expect(reclaimed.map(\.deliveryID) == [job.deliveryID])

            // The first claim's holder lost it: its record is refused; the second holder's is kept.
            let attempt = WebhookAttemptRecord(attempt: 1, at: Self.now + 30_000, statusCode: 500, durationMillis: 3, error: "HTTP 500")
            #expect(try await store.recordWebhookAttempt(job, attempt, succeeded: false, nextAttemptAt: Self.now + 40_000) == false)
            let holder = try #require(reclaimed.first)
            #expect(try await store.recordWebhookAttempt(holder, attempt, succeeded: false, nextAttemptAt: Self.now + 40_000))
            var stored = try #require(try await store.webhookDeliveries(webhookID: hook.id, before: nil, limit: 10).first)
            #expect(stored.status == .pending)
            #expect(stored.nextAttemptAt == Self.now + 40_000)
            #expect(stored.attempts == [attempt])
            #expect(try await store.nextWebhookAttemptAt() == Self.now + 40_000, "the deliverer sleeps until then")

            // Not due before its next attempt time; a 2xx ends it.
            #expect(try await store.webhookJobs(now: Self.now + 39_999, limit: 10, leaseMillis: 30_000).isEmpty)
            let next = try #require(try await store.webhookJobs(now: Self.now + 40_000, limit: 10, leaseMillis: 30_000).first)
            #expect(next.attemptsMade == 1)
            #expect(next.firstAttemptAt == Self.now + 30_000)
            let success = WebhookAttemptRecord(attempt: 2, at: Self.now + 40_000, statusCode: 204, durationMillis: 2, error: nil)
            #expect(try await store.recordWebhookAttempt(next, success, succeeded: true, nextAttemptAt: nil))
            stored = try #require(try await store.webhookDeliveries(webhookID: hook.id, before: nil, limit: 10).first)
            #expect(stored.status == .succeeded)
            #expect(stored.nextAttemptAt == nil)
            #expect(stored.attempts.map(\.statusCode) == [500, 204])
            #expect(try await store.webhookJobs(now: Self.now + 100_000_000, limit: 10, leaseMillis: 30_000).isEmpty)
            #expect(try await store.nextWebhookAttemptAt() == nil)
        }
    }

    @Test(arguments: Engine.available)
    func aDisabledWebhooksDeliveriesWaitAndDeletingItDeletesThem(engine: Engine) async throws {
        try await withStore(engine) { store in
            let hook = try await store.createWebhook(try Self.webhook(), sealedSecret: "sealed", actor: .system)
            let cursor = try await store.webhookCursor()
            let last = try await store.lastEventID()
            let delivery = NewWebhookDelivery(webhookID: hook.id, eventID: last, eventKind: "webhook.created", payload: "{}")
            #expect(try await store.enqueueWebhookDeliveries([delivery], from: cursor, to: last, now: Self.now))
            _ = try await store.updateWebhook(id: hook.id, WebhookUpdate(enabled: false), now: Self.now, actor: .system)
            #expect(try await store.webhookJobs(now: Self.now, limit: 10, leaseMillis: 30_000).isEmpty)
            _ = try await store.updateWebhook(id: hook.id, WebhookUpdate(enabled: true), now: Self.now, actor: .system)
            #expect(try await store.webhookJobs(now: Self.now, limit: 10, leaseMillis: 30_000).count == 1)
            try await store.deleteWebhook(id: hook.id, now: Self.now, actor: .system)
            #expect(try await store.webhookDeliveries(webhookID: hook.id, before: nil, limit: 10).isEmpty)
            #expect(try await store.webhook(id: hook.id) == nil)
        }
    }

    @Test(arguments: Engine.available)
    func aMasterKeyRotationResealsWebhookSecrets(engine: Engine) async throws {
        try await withStore(engine) { store in
            let old = MasterKey.generate()
            let hook = try Self.webhook()
            let secret = Data(WebhookSecret.generate().text.utf8)
            let sealed = try SecretBox(current: old).seal(secret, context: Store.webhookSecretContext(hook.id))
            _ = try await store.createWebhook(hook, sealedSecret: sealed.base64EncodedString(), actor: .system)
            let new = MasterKey.generate()
            let rotated = SecretBox(current: new, previous: [old])
            #expect(try await store.resealSecrets(with: rotated) == 1)
            #expect(try await store.resealSecrets(with: rotated) == 0, "a value under the current key is left as it is")
            let stored = try await store.database.read { db in
                try await db.raw("SELECT secret_sealed FROM webhooks WHERE id = \(bind: hook.id)").first()?.decode(column: "secret_sealed", as: String.self)
            }
            let text = try #require(stored)
            let resealed = try #require(Data(base64Encoded: text))
            #expect(try SecretBox(current: new).open(resealed, context: Store.webhookSecretContext(hook.id)) == secret)
            #expect(throws: SecretBoxError.self) { try SecretBox(current: old).open(resealed, context: Store.webhookSecretContext(hook.id)) }
        }
    }
}
