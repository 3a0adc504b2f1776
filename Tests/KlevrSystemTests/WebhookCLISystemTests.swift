import Foundation
import KlevrAPI
import KlevrTestSupport
import Testing

/// `klevr webhook …` against a real manager: create (the secret shown once), list, show, deliveries with their
/// attempts, redeliver, delete. The webhook points at a loopback port where nothing listens, so every attempt
/// fails and is recorded (receivers and signatures are tested in WebhookDeliveryTests).
@Suite(.serialized, .timeLimit(.minutes(5)), .waitsForProcesses)
struct WebhookCLISystemTests {
    @Test func webhooksThroughTheCLI() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        let password = "webhook-cli-admin-password"
        cluster.manager = try KlevrProcess(
            ["manager", "--data-dir", cluster.directory + "/manager", "--listen", "127.0.0.1:\(cluster.port)", "--log-level", "info"],
            environment: ["KLEVR_ADMIN_PASSWORD": password], logPath: cluster.directory + "/manager.log")
        // Polled through the API, not with a debug CLI process a poll; then the CLI logs in once.
        let probe = try cluster.client(credential: nil, timeout: .seconds(2))
        try await eventually(90, "the manager answers /readyz") { (try? await probe.ready().ok) != nil }
        let login = try await UserCLISystemTests.cli(
            cluster, ["login", "--server", cluster.url, "--username", "admin"], environment: ["KLEVR_PASSWORD": password])
        #expect(login.status == 0, "login: \(login.output)")
        // The test's own API client uses the token the CLI saved.
        cluster.token = try #require(try UserCLISystemTests.savedLogin(cluster)["token"])
        func cli(_ arguments: [String]) async throws -> (status: Int32, output: String) {
            try await UserCLISystemTests.cli(cluster, arguments)
        }

        let refused = try await cli(["webhook", "create", "ftp://127.0.0.1/x"])
        #expect(refused.status != 0)
        #expect(refused.output.contains("url"), "\(refused.output)")

        let create = try await cli(["webhook", "create", "http://127.0.0.1:9/hook", "--kinds", "zone", "--description", "cli", "--output", "json"])
        #expect(create.status == 0, "\(create.output)")
        let created = try UserCLISystemTests.json(Components.Schemas.WebhookCreated.self, create.output)
        #expect(created.secret.hasPrefix("whsec_"))
        #expect(created.webhook.kinds == ["zone"])
        #expect(try await cli(["zone", "create", "zone-w"]).status == 0)

        let list = try await cli(["webhook", "list", "--output", "json"])
        #expect(try UserCLISystemTests.json([Components.Schemas.Webhook].self, list.output).map(\.id) == [created.webhook.id])
        #expect(!list.output.contains(created.secret))
        let table = try await cli(["webhook", "list"])
        #expect(table.output.contains("http://127.0.0.1:9/hook"), "\(table.output)")

        // Waited for through the API; the CLI shows it once it is there.
        try await eventually(60, "the zone's event was attempted and the failure recorded") {
            let page = try await cluster.api.listWebhookDeliveries(path: .init(id: created.webhook.id)).ok.body.json
            return page.items.first?.attempts.isEmpty == false
        }
        let listed = try await cli(["webhook", "deliveries", created.webhook.id, "--output", "json"])
        #expect(listed.status == 0, "\(listed.output)")
        let deliveries = try UserCLISystemTests.json([Components.Schemas.WebhookDelivery].self, listed.output)
        let delivery = try #require(deliveries.first)
        #expect(delivery.eventKind == "zone.created")
        #expect(delivery.status == .pending)
        #expect(delivery.attempts.first?.statusCode == nil)
        #expect(delivery.attempts.first?.error?.isEmpty == false)

        let redeliver = try await cli(["webhook", "redeliver", created.webhook.id, delivery.id, "--output", "json"])
        #expect(redeliver.status == 0, "\(redeliver.output)")
        let again = try UserCLISystemTests.json(Components.Schemas.WebhookDelivery.self, redeliver.output)
        #expect(again.redeliveryOf == delivery.id)
        #expect(again.messageId == delivery.messageId)

        let show = try await cli(["webhook", "show", created.webhook.id])
        #expect(show.status == 0, "\(show.output)")
        #expect(show.output.contains("zone.created"), "\(show.output)")
        #expect(!show.output.contains(created.secret))

        // A task file's callbackUrl: its own secret, printed once.
        let file = cluster.directory + "/callback-task.yaml"
        try """
            zone: zone-w
            target: { kind: all }
            steps: [{ script: "true" }]
            schedule: { cron: "0 0 1 1 *" }
            callbackUrl: http://127.0.0.1:9/callback
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let task = try await cli(["task", "create", "-f", file])
        #expect(task.status == 0, "\(task.output)")
        #expect(task.output.contains("callback http://127.0.0.1:9/callback signing secret (shown once): whsec_"), "\(task.output)")

        #expect(try await cli(["webhook", "delete", created.webhook.id]).status == 0)
        #expect(try UserCLISystemTests.json([Components.Schemas.Webhook].self, try await cli(["webhook", "list", "--output", "json"]).output).isEmpty)
        let managerLog = cluster.manager?.log ?? ""
        let leaked = managerLog.contains(created.secret)
        #expect(!leaked, "the manager's log holds the secret")
    }
}
