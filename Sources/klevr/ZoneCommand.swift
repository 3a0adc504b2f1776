import ArgumentParser
import Foundation
import KlevrAPI

struct ZoneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zone", abstract: "Manage zones and their enrollment keys.",
        subcommands: [Create.self, List.self, Show.self, Delete.self, EnrollKey.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a zone.")
        @Argument var name: String
        @Option var description: String?
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let zone = try await options.withClient { client in
                try await api { try await client.createZone(body: .json(.init(name: name, description: description))).created.body.json }
            }
            if options.output == .json { try Printer.json(zone) } else { print("created zone \(zone.name)") }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List zones.")
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let page = try await options.withClient { client in try await api { try await client.listZones().ok.body.json } }
            if options.output == .json { return try Printer.json(page.items) }
            Printer.table(["NAME", "AGENTS", "DESCRIPTION"], page.items.map { [$0.name, String($0.agents), $0.description] })
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a zone: its primary, lease epoch, members and recent events.")
        @Argument var name: String
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let (zone, members, events) = try await options.withClient { client in
                (
                    try await api { try await client.getZone(path: .init(zone: name)).ok.body.json },
                    try await api { try await client.listAgents(query: .init(zone: name, limit: 500)).ok.body.json },
                    try await api { try await client.zoneEvents(path: .init(zone: name), query: .init(limit: 10)).ok.body.json }
                )
            }
            if options.output == .json {
                struct Details: Encodable {
                    var zone: Components.Schemas.Zone
                    var members: [Components.Schemas.Agent]
                    var events: [Components.Schemas.Event]
                }
                return try Printer.json(Details(zone: zone, members: members.items, events: events.items))
            }
            print("zone      \(zone.name)  \(zone.description)")
            print("primary   \(zone.primary ?? "none (no unexpired lease)")")
            print("epoch     \(zone.epoch ?? 0)")
            print("")
            Printer.table(["MEMBER", "ROLE", "HOSTNAME", "STATUS", "LAST SEEN"], members.items.map {
                [$0.id, $0.id == zone.primary ? "primary" : "secondary", $0.hostname, $0.status.rawValue + ($0.statusReason.map { " (\($0))" } ?? ""),
                 Printer.time($0.lastSeenAt)]
            })
            if !events.items.isEmpty {
                print("")
                Printer.table(["TIME", "EVENT", "SUBJECT", "EPOCH", "DETAIL"], events.items.map {
                    [Printer.time($0.at), $0.kind.rawValue, $0.subject, $0.detail.additionalProperties["epoch"] ?? "-",
                     EventsCommand.summary($0.detail.additionalProperties)]
                })
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a zone (refused while it has agents or unfinished runs, unless --force).")
        @Argument var name: String
        @Flag(help: "Also delete its agents, tasks and runs.") var force = false
        @OptionGroup var options: ClientOptions
        func run() async throws {
            try await options.withClient { client in
                _ = try await api { try await client.deleteZone(path: .init(zone: name), query: .init(force: force ? true : nil)).noContent }
            }
            print("deleted zone \(name)")
        }
    }

    struct EnrollKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "enroll-key", abstract: "Create, list, rotate and revoke a zone's enrollment keys.",
            subcommands: [KeyCreate.self, KeyList.self, KeyRotate.self, KeyRevoke.self])
    }

    struct KeyCreate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a key (its value is shown once).")
        @Argument var zone: String
        @Option(help: "Seconds until the key expires.") var expiresIn: Int?
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let login = try CLIConfig.load()
            let key = try await login.withClient { client in
                try await api {
                    try await client.createEnrollKey(path: .init(zone: zone), body: .json(.init(expiresInSeconds: expiresIn))).created.body.json
                }
            }
            printKey(key, options.output, login: login)
        }
    }

    struct KeyList: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List a zone's keys (never their values).")
        @Argument var zone: String
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let page = try await options.withClient { client in
                try await api { try await client.listEnrollKeys(path: .init(zone: zone)).ok.body.json }
            }
            if options.output == .json { return try Printer.json(page.items) }
            Printer.table(
                ["ID", "PREFIX", "CREATED", "EXPIRES", "REVOKED"],
                page.items.map { [$0.id, $0.prefix + "…", Printer.time($0.createdAt), Printer.time($0.expiresAt), Printer.time($0.revokedAt)] })
        }
    }

    struct KeyRotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rotate", abstract: "Revoke a key and create its replacement.")
        @Argument var zone: String
        @Argument var id: String
        @Option(help: "Seconds until the new key expires.") var expiresIn: Int?
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let login = try CLIConfig.load()
            let key = try await login.withClient { client in
                try await api {
                    try await client.rotateEnrollKey(path: .init(zone: zone, id: id), body: .json(.init(expiresInSeconds: expiresIn))).created.body.json
                }
            }
            printKey(key, options.output, login: login)
        }
    }

    struct KeyRevoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a key.")
        @Argument var zone: String
        @Argument var id: String
        @OptionGroup var options: ClientOptions
        func run() async throws {
            try await options.withClient { client in
                _ = try await api { try await client.revokeEnrollKey(path: .init(zone: zone, id: id)).noContent }
            }
            print("revoked key \(id)")
        }
    }
}

/// Prints a new enrollment key and the command that starts an agent with it, which verifies the
/// manager as this CLI's login does (with `--ca-pin` when the login pinned the manager's certificate).
func printKey(_ key: Components.Schemas.EnrollKeyCreated, _ output: OutputFormat, login: CLIConfig) {
    if output == .json {
        try? Printer.json(key)
        return
    }
    print("enrollment key for zone \(key.zone) (shown once, keep it safe):")
    print(key.key)
    print("id: \(key.id)  expires: \(Printer.time(key.expiresAt))")
    print(
        "start an agent with: KLEVR_ENROLL_KEY=<key> klevr agent --manager \(login.server)\(login.agentTrustOptions) --zone \(key.zone) --state-dir /var/lib/klevr")
}
