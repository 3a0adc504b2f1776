import ArgumentParser
import Foundation
import KlevrAPI
import KlevrAgent
import Logging
import NIOHTTP1
import ServiceLifecycle
import UnixSignals

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent", abstract: "Run the agent daemon (default), or list, show and retire agents.",
        subcommands: [Run.self, List.self, Show.self, Retire.self], defaultSubcommand: Run.self)

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the agent daemon.")
        @Option(help: "Manager URL; omit for an agent that reaches the manager only through its zone's primary (then give --peer).")
        var manager: String?
        @Option(help: "Address of the peer API (HOST:PORT) that zone members use.") var listen = "0.0.0.0:18800"
        @Option(help: "HOST:PORT members use to reach this agent (default: the --listen address).") var advertise: String?
        @Option(name: .customLong("peer"), help: "A known member of the zone (HOST:PORT), repeatable.") var peers: [String] = []
        @Option(help: "Election priority, -1000 to 1000: candidates with a higher one take over first.") var priority = 0
        @Option(help: "Zone to join.") var zone: String
        @Option(help: "Enrollment key, needed on first start only (prefer the KLEVR_ENROLL_KEY environment variable).")
        var enrollKey: String?
        @Option(help: "Directory for the agent's identity, outbox and run directories.") var stateDir = "/var/lib/klevr-agent"
        @Option(help: "Log level.") var logLevel = "info"

        func run() async throws {
            LogSetup.bootstrap(level: logLevel)
            if let manager, !(manager.hasPrefix("http://") || manager.hasPrefix("https://")) {
                throw ValidationError("--manager must be an http:// or https:// URL")
            }
            guard manager != nil || !peers.isEmpty else { throw ValidationError("give --manager URL, or --peer HOST:PORT for an agent without a manager route") }
            guard (-1000...1000).contains(priority) else { throw ValidationError("--priority must be from -1000 to 1000") }
            let (host, port) = try parseListen(listen)
            for peer in peers { _ = try parseListen(peer) }
            let key = enrollKey ?? ProcessInfo.processInfo.environment["KLEVR_ENROLL_KEY"]
            let config = AgentConfig(
                managerURL: manager, zone: zone, enrollKey: key, stateDir: stateDir, listenHost: host, listenPort: port, advertise: advertise,
                peers: peers, priority: priority)
            let logger = Logger(label: "klevr.agent")
            let group = ServiceGroup(
                configuration: .init(services: [.init(service: AgentService(config: config, logger: logger))],
                    gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            do {
                try await group.run()
            } catch let refused as AgentService.EnrollmentRefused {
                throw CLIError(refused.description)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List agents.")
        @Option(help: "Only this zone.") var zone: String?
        @Option(help: "At most this many.") var limit = 200
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let client = try options.client()
            var path = "/api/v1/agents?limit=\(limit)"
            if let zone { path += "&zone=\(zone.urlPathEscaped)" }
            let page = try await api { try await client.send(.GET, path, as: Page<AgentView>.self) }
            if options.output == .json { return try Printer.json(page.items) }
            Printer.table(
                ["ID", "ZONE", "HOSTNAME", "STATUS", "LAST SEEN"],
                page.items.map { [$0.id, $0.zone, $0.hostname, $0.status + ($0.statusReason.map { " (\($0))" } ?? ""), Printer.time($0.lastSeenAt)] })
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one agent.")
        @Argument var id: String
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let client = try options.client()
            let agent = try await api { try await client.send(.GET, "/api/v1/agents/\(id.urlPathEscaped)", as: AgentView.self) }
            if options.output == .json { return try Printer.json(agent) }
            for (name, value) in [
                ("id", agent.id), ("zone", agent.zone), ("hostname", agent.hostname), ("os", agent.os), ("version", agent.version),
                ("status", agent.status + (agent.statusReason.map { " (\($0))" } ?? "")), ("last seen", Printer.time(agent.lastSeenAt)),
                ("enrolled", Printer.time(agent.enrolledAt)),
            ] {
                print("\(name.padding(toLength: 10, withPad: " ", startingAt: 0)) \(value)")
            }
        }
    }

    struct Retire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Retire an agent: its credential stops working, its unfinished runs are canceled.")
        @Argument var id: String
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let client = try options.client()
            let agent = try await api { try await client.send(.POST, "/api/v1/agents/\(id.urlPathEscaped)/retire", as: AgentView.self) }
            if options.output == .json { return try Printer.json(agent) }
            print("retired agent \(agent.id) (\(agent.hostname))")
        }
    }
}
