import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KlevrAPI
import KlevrClient
import KlevrCore
@testable import KlevrManager
import KlevrStore
import KlevrTestSupport
import Logging
import NIOCore
import Synchronization
import Testing

/// A webhook receiver on 127.0.0.1: records every request and answers with the statuses it is given in turn
/// (then 200). Signatures are checked with the Standard Webhooks algorithm written here independently of
/// `StandardWebhooks`: HMAC-SHA256 over `id.timestamp.body` with the base64-decoded `whsec_` key, base64, `v1,`.
final class WebhookReceiver: Sendable {
    struct Received: Sendable {
        var id: String
        var timestamp: String
        var signature: String
        var body: Data
        var receivedAt: Int64
    }

    private let received = Mutex<[Received]>([])
    private let answers: Mutex<[HTTPResponse.Status]>

    init(answers: [HTTPResponse.Status] = []) {
        self.answers = Mutex(answers)
    }

    var requests: [Received] { received.withLock { $0 } }

    /// From now on, answer these statuses in turn (then 200).
    func answer(_ statuses: [HTTPResponse.Status]) { answers.withLock { $0 = statuses } }

    func handle(_ request: Request) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: 1 << 20)
        let fields = request.headers
        let entry = Received(
            id: fields[HTTPField.Name("webhook-id")!] ?? "", timestamp: fields[HTTPField.Name("webhook-timestamp")!] ?? "",
            signature: fields[HTTPField.Name("webhook-signature")!] ?? "", body: Data(body.readableBytesView), receivedAt: Clock.nowMillis())
        received.withLock { $0.append(entry) }
        let status = answers.withLock { list -> HTTPResponse.Status in list.isEmpty ? .ok : list.removeFirst() }
        return Response(status: status)
    }

    /// The Standard Webhooks check, from the specification: the signed content is `<id>.<timestamp>.<body>`, the
    /// key is the base64 part of the secret, and one of the space-separated `v1,<base64>` signatures must match;
    /// the timestamp must be within five minutes of now.
    static func verify(_ request: Received, secret: String) -> Bool {
        guard secret.hasPrefix("whsec_"), let key = Data(base64Encoded: String(secret.dropFirst("whsec_".count))) else { return false }
        guard let seconds = Int64(request.timestamp), abs(request.receivedAt / 1000 - seconds) <= 300 else { return false }
        var content = Data("\(request.id).\(request.timestamp).".utf8)
        content.append(request.body)
        let mac = HMAC<SHA256>.authenticationCode(for: content, using: SymmetricKey(data: key))
        let expected = "v1," + Data(mac).base64EncodedString()
        return request.signature.split(separator: " ").contains { $0 == expected }
    }

    /// The receiver is stopped by cancellation, which its server logs as errors: only criticals are kept.
    static var quietLogger: Logger {
        var logger = Logger(label: "test.receiver")
        logger.logLevel = .critical
        return logger
    }

    /// Runs `body` with a receiver listening on 127.0.0.1 (its port given), stopped afterwards.
    static func run(
        answers: [HTTPResponse.Status] = [], _ body: @Sendable (WebhookReceiver, Int) async throws -> Void
    ) async throws {
        let receiver = WebhookReceiver(answers: answers)
        let router = Router()
        router.post("/hook") { request, _ in try await receiver.handle(request) }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) }, logger: Self.quietLogger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService(gracefulShutdownSignals: []) }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            defer { group.cancelAll() }
            try await body(receiver, port)
        }
    }
}

/// A value shared with the closures of a test.
final class Shared<Value: Sendable>: Sendable {
    let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
}

/// Webhooks through the API with real deliveries to a receiver in the test: signatures, retries, a manager
/// restart between attempts, deliveries and attempts listed, redelivery, secrets never shown again, roles.
@Suite struct WebhookDeliveryTests {
    /// A manager configuration on a SQLite file, with retries in milliseconds instead of minutes.
    static func config(path: String, firstDelay: Int64 = 100) -> ManagerConfig {
        var config = ManagerConfig(
            host: "127.0.0.1", port: 0, database: .sqlite(path: path), adminPassword: TestManager.adminPassword, heartbeatSeconds: 5,
            longPollSeconds: 2, redeliverAfterSeconds: 10, bcryptCost: 4, leaseMillis: 60_000)
        config.webhookRetry = WebhookRetryPolicy(firstDelay: firstDelay, multiplier: 2, maximumDelay: 1_000, jitter: 0)
        config.webhookPollSeconds = 0.05
        config.webhookTimeoutSeconds = 5
        return config
    }

    static func databasePath() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("klevr-webhooks-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory.appendingPathComponent("klevr.db").path
    }

    static func manager(_ config: ManagerConfig) async throws -> TestManager {
        let logs = LogCapture()
        let (manager, _) = try await Manager.bootstrap(config: config, logger: logs.logger())
        return TestManager(manager: manager, logs: logs)
    }

    struct Payload: Decodable {
        struct Data: Decodable {
            var id: Int64
            var kind: String
            var zone: String?
            var detail: [String: String]
        }

        var type: String
        var timestamp: String
        var data: Data
    }

    @Test func aReceiverThatFailsThreeTimesGetsTheEventEverySignatureVerifies() async throws {
        let harness = try await Self.manager(Self.config(path: try Self.databasePath()))
        try await WebhookReceiver.run(answers: [.internalServerError, .internalServerError, .internalServerError]) { receiver, port in
            try await harness.test { client in
                let admin = try await client.token()
                let api = try client.api(token: admin)
                let created = try await api.createWebhook(
                    body: .json(.init(url: "http://127.0.0.1:\(port)/hook", description: "test", kinds: ["zone.created"]))
                ).created.body.json
                #expect(created.secret.hasPrefix("whsec_"))
                #expect(created.webhook.kinds == ["zone.created"])
                _ = try await api.createZone(body: .json(.init(name: "zone-hooked"))).created.body.json

                try await eventually(60, "four attempts reached the receiver") { receiver.requests.count >= 4 }
                let requests = receiver.requests
                #expect(requests.count == 4)
                #expect(requests.allSatisfy { WebhookReceiver.verify($0, secret: created.secret) }, "every delivery verifies")
                #expect(Set(requests.map(\.id)).count == 1, "retries keep the webhook-id")
                #expect(requests.allSatisfy { !WebhookReceiver.verify($0, secret: WebhookSecret.generate().text) })
                let payload = try JSONDecoder().decode(Payload.self, from: try #require(requests.last).body)
                #expect(payload.type == "zone.created")
                #expect(payload.data.kind == "zone.created")
                #expect(payload.data.detail["name"] == "zone-hooked")
                #expect(payload.timestamp.hasSuffix("Z"))

                // The delivery and its four attempts are visible.
                try await eventually(30, "the delivery is recorded as succeeded") {
                    try await api.listWebhookDeliveries(path: .init(id: created.webhook.id)).ok.body.json.items.first?.status == .succeeded
                }
                let deliveries = try await api.listWebhookDeliveries(path: .init(id: created.webhook.id)).ok.body.json.items
                #expect(deliveries.count == 1)
                let delivery = try #require(deliveries.first)
                #expect(delivery.attempts.map(\.statusCode) == [500, 500, 500, 200])
                #expect(delivery.attempts.map(\.attempt) == [1, 2, 3, 4])
                #expect(delivery.attempts.prefix(3).allSatisfy { $0.error?.contains("500") == true })
                #expect(delivery.attempts.last?.error == nil)
                #expect(delivery.messageId == requests.first?.id)
                #expect(delivery.eventKind == "zone.created")
                #expect(delivery.nextAttemptAt == nil)

                // Redelivery: a new delivery of the same event with the same webhook-id.
                let again = try await api.redeliverWebhook(path: .init(id: created.webhook.id, deliveryId: delivery.id)).created.body.json
                #expect(again.redeliveryOf == delivery.id)
                #expect(again.messageId == delivery.messageId)
                try await eventually(60, "the redelivery reached the receiver") { receiver.requests.count >= 5 }
                let last = try #require(receiver.requests.last)
                #expect(last.id == delivery.messageId)
                #expect(last.body == requests.last?.body)
                #expect(WebhookReceiver.verify(last, secret: created.secret))
                try await eventually(30, "the redelivery is recorded") {
                    try await api.listWebhookDeliveries(path: .init(id: created.webhook.id)).ok.body.json.items.filter { $0.status == .succeeded }.count == 2
                }

                // The secret is never shown again, and no event carries it.
                let listed = try await client.call(.get, "/api/v1/webhooks", token: admin)
                let shown = try await client.call(.get, "/api/v1/webhooks/\(created.webhook.id)", token: admin)
                let events = try await client.call(.get, "/api/v1/events?kind=webhook&limit=500", token: admin)
                let secretText = String(created.secret.dropFirst("whsec_".count))
                for answer in [listed, shown, events] {
                    #expect(answer.status == .ok)
                    #expect(!answer.body.contains(secretText))
                }
                #expect(events.body.contains("webhook.created"))
                #expect(events.body.contains("webhook.redelivered"))
                #expect(!harness.logs.text.contains(secretText))
            }
        }
    }

    @Test func aManagerRestartBetweenAttemptsLosesNoDelivery() async throws {
        let path = try Self.databasePath()
        // Attempts stay a second apart before the restart, so that the first manager stops between two.
        let config = Self.config(path: path, firstDelay: 1_000)
        let secret = WebhookSecret.generate().text
        try await WebhookReceiver.run(answers: Array(repeating: .serviceUnavailable, count: 1_000)) { receiver, port in
            let first = try await Self.manager(config)
            let ids = Shared<(webhook: String, zone: String)>(("", ""))
            try await first.test { client in
                let admin = try await client.token()
                let api = try client.api(token: admin)
                let created = try await api.createWebhook(
                    body: .json(.init(url: "http://127.0.0.1:\(port)/hook", kinds: ["zone"], secret: secret))
                ).created.body.json
                #expect(created.secret == secret)
                let zone = try await api.createZone(body: .json(.init(name: "zone-restart"))).created.body.json
                ids.value.withLock { $0 = (created.webhook.id, zone.id) }
                try await eventually(60, "a first attempt failed") { !receiver.requests.isEmpty }
                try await eventually(30, "the failed attempt is recorded") {
                    let delivery = try await api.listWebhookDeliveries(path: .init(id: created.webhook.id)).ok.body.json.items.first
                    return delivery?.status == .pending && delivery?.attempts.isEmpty == false
                }
            }
            // The first manager is stopped; the receiver recovers; a second manager on the same file delivers.
            receiver.answer([])
            let before = receiver.requests.count
            let (webhookID, zoneID) = ids.value.withLock { $0 }
            let second = try await Self.manager(config)
            try await second.test { client in
                let admin = try await client.token()
                let api = try client.api(token: admin)
                try await eventually(60, "the delivery succeeded after the restart") {
                    try await api.listWebhookDeliveries(path: .init(id: webhookID)).ok.body.json.items.first?.status == .succeeded
                }
                let deliveries = try await api.listWebhookDeliveries(path: .init(id: webhookID)).ok.body.json.items
                #expect(deliveries.count == 1, "the restart queued nothing twice")
                let delivery = try #require(deliveries.first)
                #expect(delivery.attempts.count >= 2)
                #expect(delivery.attempts.last?.statusCode == 200)
                #expect(delivery.attempts.dropLast().allSatisfy { $0.statusCode == 503 })
                let requests = receiver.requests
                #expect(requests.count > before)
                #expect(requests.allSatisfy { WebhookReceiver.verify($0, secret: secret) })
                #expect(Set(requests.map(\.id)) == [delivery.messageId])
                let payload = try JSONDecoder().decode(Payload.self, from: try #require(requests.last).body)
                #expect(payload.type == "zone.created")
                #expect(payload.data.detail["name"] == "zone-restart")
                #expect(delivery.eventKind == "zone.created")
                _ = zoneID
            }
        }
    }

    @Test func webhooksAreAdminsToChangeOperatorsToReadAndBadInputChangesNothing() async throws {
        let harness = try await Self.manager(Self.config(path: try Self.databasePath()))
        try await harness.test { client in
            let admin = try await client.token()
            let viewer = try await client.user("watcher", role: .viewer, admin: admin)
            let operatorToken = try await client.user("oper", role: .operator_, admin: admin)
            let body = #"{"url":"http://127.0.0.1:9/hook"}"#
            #expect(try await client.call(.post, "/api/v1/webhooks", token: viewer, json: body).status == .forbidden)
            #expect(try await client.call(.post, "/api/v1/webhooks", token: operatorToken, json: body).status == .forbidden)
            #expect(try await client.call(.get, "/api/v1/webhooks", token: viewer).status == .forbidden)

            for (json, field) in [
                (#"{"url":"ftp://127.0.0.1/x"}"#, "url"), (#"{"url":"javascript:alert(1)"}"#, "url"), (#"{"url":"http://"}"#, "url"),
                (#"{"url":"http://user:pw@127.0.0.1/"}"#, "url"), (#"{"url":"http://127.0.0.1:9/","kinds":["nothing"]}"#, "kinds"),
                (#"{"url":"http://127.0.0.1:9/","secret":"whsec_c2hvcnQ="}"#, "secret"),
            ] {
                let answer = try await client.call(.post, "/api/v1/webhooks", token: admin, json: json)
                #expect(answer.status == .unprocessableContent, "\(json): \(answer.body)")
                #expect(answer.body.contains(field), "\(json): \(answer.body)")
            }
            #expect(try await client.api(token: admin).listWebhooks().ok.body.json.items.isEmpty)

            let api = try client.api(token: admin)
            _ = try await api.createZone(body: .json(.init(name: "zone-a"))).created.body.json
            let created = try await api.createWebhook(
                body: .json(.init(url: "https://127.0.0.1:9/a?b=c", description: "d", kinds: ["run", "agent.*"], zone: "zone-a", enabled: false))
            ).created.body.json
            #expect(created.webhook.kinds == ["run", "agent"])
            #expect(created.webhook.zone == "zone-a")
            #expect(created.webhook.enabled == false)
            let operatorView = try await client.api(token: operatorToken).listWebhooks().ok.body.json.items
            #expect(operatorView.map(\.id) == [created.webhook.id])
            #expect(try await client.call(.patch, "/api/v1/webhooks/\(created.webhook.id)", token: operatorToken, json: #"{"enabled":true}"#).status == .forbidden)

            let updated = try await api.updateWebhook(path: .init(id: created.webhook.id), body: .json(.init(zone: "", enabled: true))).ok.body.json
            #expect(updated.zone == nil)
            #expect(updated.enabled)
            let rotated = try await api.rotateWebhookSecret(path: .init(id: created.webhook.id)).ok.body.json
            #expect(rotated.secret != created.secret)
            let events = try await client.call(.get, "/api/v1/events?kind=webhook&limit=500", token: admin)
            #expect(events.body.contains("webhook.updated"))
            #expect(!events.body.contains(String(rotated.secret.dropFirst(6))))
            #expect(!events.body.contains(String(created.secret.dropFirst(6))))

            _ = try await api.deleteWebhook(path: .init(id: created.webhook.id)).noContent
            #expect(try await client.call(.get, "/api/v1/webhooks/\(created.webhook.id)", token: admin).status == .notFound)
            #expect(try await client.call(.delete, "/api/v1/webhooks/\(created.webhook.id)", token: admin).status == .notFound)
        }
    }

    @Test func onlyMatchingKindsAndZonesAreQueuedAndADisabledWebhookGetsNothing() async throws {
        let harness = try await Self.manager(Self.config(path: try Self.databasePath()))
        try await harness.test { client in
            let admin = try await client.token()
            let api = try client.api(token: admin)
            _ = try await api.createZone(body: .json(.init(name: "zone-a"))).created.body.json
            // Nothing listens on port 9 of loopback: attempts fail and are recorded, which is all this test needs.
            let zoneOnly = try await api.createWebhook(body: .json(.init(url: "http://127.0.0.1:9/", kinds: ["zone.deleted"], zone: "zone-a")))
                .created.body.json.webhook
            let tokens = try await api.createWebhook(body: .json(.init(url: "http://127.0.0.1:9/", kinds: ["token.*"]))).created.body.json.webhook
            let disabled = try await api.createWebhook(body: .json(.init(url: "http://127.0.0.1:9/", enabled: false))).created.body.json.webhook
            _ = try await api.createZone(body: .json(.init(name: "zone-b"))).created.body.json
            _ = try await api.deleteZone(path: .init(zone: "zone-b")).noContent
            _ = try await api.deleteZone(path: .init(zone: "zone-a")).noContent
            _ = try await api.createToken(body: .json(.init(name: "another"))).created.body.json
            try await eventually(30, "the deliveries are queued") {
                try await harness.manager.store.webhookCursor() >= harness.manager.store.lastEventID()
            }
            let zoneDeliveries = try await api.listWebhookDeliveries(path: .init(id: zoneOnly.id)).ok.body.json.items
            #expect(zoneDeliveries.map(\.eventKind) == ["zone.deleted"])
            let tokenDeliveries = try await api.listWebhookDeliveries(path: .init(id: tokens.id)).ok.body.json.items
            #expect(tokenDeliveries.map(\.eventKind) == ["token.created"])
            #expect(try await api.listWebhookDeliveries(path: .init(id: disabled.id)).ok.body.json.items.isEmpty)
            try await eventually(30, "the refused connection is recorded as an attempt") {
                let first = try await api.listWebhookDeliveries(path: .init(id: tokens.id)).ok.body.json.items.first
                return first?.attempts.first.map { $0.statusCode == nil && $0.error != nil } == true
            }
        }
    }

    @Test func aTasksRunEventsAreDeliveredToItsCallbackURLSignedWithItsOwnSecret() async throws {
        let harness = try await Self.manager(Self.config(path: try Self.databasePath()))
        try await WebhookReceiver.run { receiver, port in
            try await harness.test { client in
                let admin = try await client.token()
                let api = try client.api(token: admin)
                let key = try await client.zoneWithKey("zone-cb", admin: admin).key
                let agent = try await client.enroll(zone: "zone-cb", key: key)
                let bad = try await client.call(
                    .post, "/api/v1/tasks", token: admin,
                    json: #"{"zone":"zone-cb","target":{"kind":"agent","agentId":"\#(agent.agentId)"},"steps":[{"script":"true"}],"callbackUrl":"file:///etc/passwd"}"#)
                #expect(bad.status == .unprocessableContent)
                #expect(bad.body.contains("callbackUrl"))
                let task = try await api.createTask(
                    body: .json(
                        .init(
                            zone: "zone-cb", target: .agent(agent.agentId), steps: [.init(script: "true")],
                            callbackUrl: "http://127.0.0.1:\(port)/hook"))
                ).created.body.json
                let secret = try #require(task.callbackSecret)
                #expect(secret.hasPrefix("whsec_"))
                #expect(task.callbackUrl == "http://127.0.0.1:\(port)/hook")
                let runID = try #require(task.runs.first?.id)
                _ = try await api.cancelRun(path: .init(id: runID)).ok.body.json

                try await eventually(60, "the run's creation and cancellation reached the callback") {
                    let kinds = try receiver.requests.map { try JSONDecoder().decode(Payload.self, from: $0.body).type }
                    return kinds.contains("run.created") && kinds.contains("run.canceled")
                }
                let requests = receiver.requests
                #expect(requests.allSatisfy { WebhookReceiver.verify($0, secret: secret) })
                let payloads = try requests.map { try JSONDecoder().decode(Payload.self, from: $0.body) }
                #expect(payloads.allSatisfy { $0.type.hasPrefix("run.") && $0.data.detail["task"] == task.id })
                // The callback is the task's: not a webhook of the list, and its secret is not shown again.
                #expect(try await api.listWebhooks().ok.body.json.items.isEmpty)
                let shown = try await api.getTask(path: .init(id: task.id)).ok.body.json
                #expect(shown.callbackSecret == nil)
                #expect(shown.callbackUrl == task.callbackUrl)
                let raw = try await client.call(.get, "/api/v1/tasks/\(task.id)", token: admin)
                #expect(!raw.body.contains(String(secret.dropFirst(6))))

                // Deleting the zone deletes its tasks' callbacks.
                _ = try await api.deleteZone(path: .init(zone: "zone-cb"), query: .init(force: true)).noContent
                #expect(try await harness.manager.store.taskCallback(taskID: task.id) == nil)
            }
        }
    }
}
