import ArgumentParser
import Foundation
import KlevrAPI

struct WebhookCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webhook", abstract: "Manage webhooks (admins) and see their deliveries (operators and admins).",
        subcommands: [List.self, Create.self, Show.self, Delete.self, RotateSecret.self, Deliveries.self, Redeliver.self])

    static func kinds(_ webhook: Components.Schemas.Webhook) -> String {
        webhook.kinds.isEmpty ? "*" : webhook.kinds.joined(separator: ",")
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List webhooks (never their secrets).")
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let page = try await options.withClient { client in try await api { try await client.listWebhooks().ok.body.json } }
            if options.output == .json { return try Printer.json(page.items) }
            Printer.table(
                ["ID", "URL", "KINDS", "ZONE", "ENABLED", "DESCRIPTION"],
                page.items.map { [$0.id, $0.url, WebhookCommand.kinds($0), $0.zone ?? "*", $0.enabled ? "yes" : "no", $0.description] })
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a webhook; its signing secret (whsec_…) is shown once.",
            discussion: "The manager POSTs every matching event to the URL, signed as Standard Webhooks says; see docs/webhooks.md.")
        @Argument(help: "An http:// or https:// URL.") var url: String
        @Option(help: "Event kinds or families, comma-separated (run, run.failed, agent.*); default: every kind.") var kinds: String?
        @Option(help: "Only this zone's events.") var zone: String?
        @Option var description: String?
        @Option(help: "Use this whsec_ secret instead of a generated one.") var secret: String?
        @Flag(help: "Create it disabled (nothing is delivered until it is enabled).") var disabled = false
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let kindList = kinds.map { $0.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces)) } }
            let created = try await options.withClient { client in
                try await api {
                    try await client.createWebhook(
                        body: .json(
                            .init(url: url, description: description, kinds: kindList, zone: zone, enabled: disabled ? false : nil, secret: secret))
                    ).created.body.json
                }
            }
            if options.output == .json { return try Printer.json(created) }
            print("created webhook \(created.webhook.id) → \(created.webhook.url)")
            print("signing secret (shown once, give it to the receiver):")
            print(created.secret)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a webhook and its latest deliveries.")
        @Argument var id: String
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let (webhook, deliveries) = try await options.withClient { client in
                (
                    try await api { try await client.getWebhook(path: .init(id: id)).ok.body.json },
                    try await api { try await client.listWebhookDeliveries(path: .init(id: id), query: .init(limit: 10)).ok.body.json }
                )
            }
            if options.output == .json {
                struct Details: Encodable {
                    var webhook: Components.Schemas.Webhook
                    var deliveries: [Components.Schemas.WebhookDelivery]
                }
                return try Printer.json(Details(webhook: webhook, deliveries: deliveries.items))
            }
            print("webhook      \(webhook.id)")
            print("url          \(webhook.url)")
            print("kinds        \(WebhookCommand.kinds(webhook))")
            print("zone         \(webhook.zone ?? "*")")
            print("enabled      \(webhook.enabled ? "yes" : "no")")
            print("description  \(webhook.description)")
            print("created      \(Printer.time(webhook.createdAt)) by \(webhook.createdBy)")
            print("")
            Deliveries.print(deliveries.items)
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a webhook with its deliveries.")
        @Argument var id: String
        @OptionGroup var options: ClientOptions
        func run() async throws {
            try await options.withClient { client in _ = try await api { try await client.deleteWebhook(path: .init(id: id)).noContent } }
            print("deleted webhook \(id)")
        }
    }

    struct RotateSecret: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-secret", abstract: "Replace a webhook's secret by a new one (shown once); attempts from now on use it.")
        @Argument var id: String
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let rotated = try await options.withClient { client in
                try await api { try await client.rotateWebhookSecret(path: .init(id: id)).ok.body.json }
            }
            if options.output == .json { return try Printer.json(rotated) }
            print("new signing secret of webhook \(rotated.webhook.id) (shown once):")
            print(rotated.secret)
        }
    }

    struct Deliveries: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A webhook's deliveries, newest first, with every attempt.")
        @Argument var id: String
        @Option(help: "pending, succeeded or failed.") var status: String?
        @Option var limit: Int = 50
        @OptionGroup var options: ClientOptions
        func run() async throws {
            var wanted: Components.Schemas.WebhookDeliveryStatus?
            if let status {
                guard let value = Components.Schemas.WebhookDeliveryStatus(rawValue: status) else {
                    throw ValidationError("--status must be pending, succeeded or failed")
                }
                wanted = value
            }
            let page = try await options.withClient { client in
                try await api {
                    try await client.listWebhookDeliveries(path: .init(id: id), query: .init(status: wanted, limit: limit)).ok.body.json
                }
            }
            if options.output == .json { return try Printer.json(page.items) }
            Self.print(page.items)
        }

        static func print(_ deliveries: [Components.Schemas.WebhookDelivery]) {
            Printer.table(
                ["DELIVERY", "EVENT", "KIND", "STATUS", "ATTEMPTS", "LAST", "NEXT"],
                deliveries.map { delivery in
                    let last = delivery.attempts.last.map { attempt in
                        (attempt.statusCode.map { String($0) } ?? "-") + " " + (attempt.error ?? "ok") + " (\(attempt.durationMillis) ms)"
                    }
                    return [
                        delivery.id, String(delivery.eventId), delivery.eventKind, delivery.status.rawValue, String(delivery.attempts.count),
                        last ?? "", delivery.nextAttemptAt.map { Printer.time($0) } ?? "",
                    ]
                })
        }
    }

    struct Redeliver: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send a delivery's event again (same body and webhook-id), now.")
        @Argument var id: String
        @Argument(help: "The delivery to repeat.") var delivery: String
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let queued = try await options.withClient { client in
                try await api { try await client.redeliverWebhook(path: .init(id: id, deliveryId: delivery)).created.body.json }
            }
            if options.output == .json { return try Printer.json(queued) }
            print("queued delivery \(queued.id) of event \(queued.eventId) (webhook-id \(queued.messageId))")
        }
    }
}
