import ArgumentParser
import Foundation
import KlevrAPI
import KlevrAgent
import KlevrClient
import KlevrCore
import Logging
import ServiceLifecycle
import UnixSignals

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent", abstract: "Run the agent daemon (default), or list, show and retire agents.",
        subcommands: [Run.self, List.self, Show.self, Label.self, Retire.self], defaultSubcommand: Run.self)

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
        @Option(help: "Directory for the agent's identity and outbox.") var stateDir = "/var/lib/klevr-agent"
        @Option(help: "Directory runs execute in, outside the state directory and holding nothing else (default: a directory of this agent under the system's temporary directory).")
        var workDir: String?
        @Option(help: "Run scripts as this user (the agent must run as root).") var runAs: String?
        @Option(help: "How many runs execute at once; more wait their turn.") var maxRuns = AgentConfig.defaultMaxRuns
        @Option(help: "Trust only the CAs of this PEM file for an https:// manager (default: the system trust store).") var ca: String?
        @Option(help: "Trust only an https:// manager whose certificate's public key has this pin (sha256:<hex>, printed by the manager).")
        var caPin: String?
        @Option(help: "The agent's labels, key=value,... (reported at enrollment and at each start; labels an operator set through the API win).")
        var labels: String?
        @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (the built-in command agent.set-log-level changes it until a restart).")
        var logLevel = "info"

        func run() async throws {
            let agentLog = AgentLog(level: Logger.Level(rawValue: logLevel) ?? .info)
            LogSetup.bootstrap(agentLog: agentLog)
            let agentLabels: [String: String]
            do {
                agentLabels = try labels.map { try Labels(parsing: $0).values } ?? [:]
            } catch {
                throw ValidationError("--labels: \(error)")
            }
            if let manager, !(manager.hasPrefix("http://") || manager.hasPrefix("https://")) {
                throw ValidationError("--manager must be an http:// or https:// URL")
            }
            let trust: ServerTrust?
            do {
                trust = try ServerTrust.fromOptions(caFile: ca, pin: caPin)
            } catch {
                throw ValidationError(error.description)
            }
            if trust != nil && !(manager?.lowercased().hasPrefix("https://") ?? false) {
                throw ValidationError("--ca and --ca-pin verify an https:// --manager URL")
            }
            guard manager != nil || !peers.isEmpty else { throw ValidationError("give --manager URL, or --peer HOST:PORT for an agent without a manager route") }
            guard (-1000...1000).contains(priority) else { throw ValidationError("--priority must be from -1000 to 1000") }
            guard maxRuns >= 1 else { throw ValidationError("--max-runs must be at least 1") }
            if let runAs {
                do {
                    _ = try ScriptUser.lookup(runAs)
                } catch {
                    throw ValidationError(error.description)
                }
            }
            let work = workDir ?? AgentConfig.defaultWorkDir(stateDir: stateDir, temporaryDirectory: FileManager.default.temporaryDirectory.path)
            guard !Self.overlaps(work, stateDir) else {
                throw ValidationError("--work-dir must be outside --state-dir (and not contain it): scripts must not reach the agent's files")
            }
            let (host, port) = try parseListen(listen)
            for peer in peers { _ = try parseListen(peer) }
            let key = enrollKey ?? ProcessInfo.processInfo.environment["KLEVR_ENROLL_KEY"]
            let config = AgentConfig(
                managerURL: manager, zone: zone, enrollKey: key, stateDir: stateDir, listenHost: host, listenPort: port, advertise: advertise,
                peers: peers, priority: priority, workDir: work, runAs: runAs, maxRuns: maxRuns, managerTrust: trust, labels: agentLabels)
            let logger = Logger(label: "klevr.agent")
            let group = ServiceGroup(
                configuration: .init(services: [.init(service: AgentService(config: config, logger: logger, log: agentLog))],
                    gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            do {
                try await group.run()
            } catch let stop as AgentExit {
                // agent.restart exits with a status of its own, for the supervisor (systemd, klevr up) to start it again.
                logger.notice("agent stopped by a built-in command", metadata: ["reason": "\(stop.reason)", "exit.status": "\(stop.status)"])
                throw ExitCode(stop.status)
            } catch let refused as AgentService.EnrollmentRefused {
                throw CLIError(refused.description)
            } catch let mismatch as ServerTrust.PinMismatch {
                throw CLIError(mismatch.description)
            } catch let unusable as ServerTrust.PinUnusable {
                throw CLIError(unusable.description)
            } catch let invalid as ServerTrust.InvalidOptions {
                throw CLIError(invalid.description)
            }
        }

        /// Whether one directory is the other or lies inside it.
        static func overlaps(_ first: String, _ second: String) -> Bool {
            let a = URL(fileURLWithPath: first).standardizedFileURL.resolvingSymlinksInPath().path
            let b = URL(fileURLWithPath: second).standardizedFileURL.resolvingSymlinksInPath().path
            return a == b || a.hasPrefix(b.hasSuffix("/") ? b : b + "/") || b.hasPrefix(a.hasSuffix("/") ? a : a + "/")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List agents.")
        @Option(help: "Only this zone.") var zone: String?
        @Option(help: "Only agents whose labels match this selector (env=prod,role!=db).") var selector: String?
        @Option(help: "At most this many.") var limit = 200
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let page = try await options.withClient { client in
                try await api { try await client.listAgents(query: .init(zone: zone, selector: selector, limit: limit)).ok.body.json }
            }
            if options.output == .json { return try Printer.json(page.items) }
            Printer.table(
                ["ID", "ZONE", "HOSTNAME", "STATUS", "LAST SEEN", "LABELS"],
                page.items.map {
                    [$0.id, $0.zone, $0.hostname, $0.status.rawValue + ($0.statusReason.map { " (\($0))" } ?? ""), Printer.time($0.lastSeenAt),
                        Label.text($0.labels.additionalProperties)]
                })
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one agent.")
        @Argument var id: String
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let agent = try await options.withClient { client in
                let id = try await IDResolver(client: client).agent(self.id)
                return try await api { try await client.getAgent(path: .init(id: id)).ok.body.json }
            }
            if options.output == .json { return try Printer.json(agent) }
            for (name, value) in [
                ("id", agent.id), ("zone", agent.zone), ("hostname", agent.hostname), ("os", agent.os), ("version", agent.version),
                ("status", agent.status.rawValue + (agent.statusReason.map { " (\($0))" } ?? "")), ("last seen", Printer.time(agent.lastSeenAt)),
                ("enrolled", Printer.time(agent.enrolledAt)),
                ("labels", Label.text(agent.labels.additionalProperties) + (agent.labelsSetBy.map { " (set by \($0))" } ?? "")),
            ] {
                print("\(name.padding(toLength: 10, withPad: " ", startingAt: 0)) \(value)")
            }
        }
    }

    struct Label: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set an agent's labels (they replace its labels and override its --labels), or --clear them.",
            discussion: "Example: klevr agent label 3f2a env=prod,role=web    klevr agent label 3f2a --clear (its own --labels count again)")
        @Argument var id: String
        @Argument(help: "key=value,... (empty for no labels).") var labels: String?
        @Flag(help: "Clear the labels set through the API: the agent's own --labels count again.") var clear = false
        @OptionGroup var options: ClientOptions

        func validate() throws {
            guard clear != (labels != nil) else { throw ValidationError("give the labels (key=value,...) or --clear") }
        }

        func run() async throws {
            let parsed: [String: String]?
            do {
                parsed = try labels.map { try Labels(parsing: $0).values }
            } catch {
                throw ValidationError("labels: \(error)")
            }
            let agent = try await options.withClient { client in
                let id = try await IDResolver(client: client).agent(self.id)
                if let parsed {
                    return try await api {
                        try await client.setAgentLabels(path: .init(id: id), body: .json(.init(labels: .init(additionalProperties: parsed)))).ok.body.json
                    }
                }
                return try await api { try await client.clearAgentLabels(path: .init(id: id)).ok.body.json }
            }
            if options.output == .json { return try Printer.json(agent) }
            print("agent \(agent.id) labels: \(Self.text(agent.labels.additionalProperties))\(agent.labelsSetBy == nil ? " (its own --labels)" : "")")
        }

        /// `key=value,…` in key order, `-` for none.
        static func text(_ labels: [String: String]) -> String {
            labels.isEmpty ? "-" : labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        }
    }

    struct Retire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Retire an agent: its credential stops working, its unfinished runs are canceled.")
        @Argument var id: String
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let agent = try await options.withClient { client in
                let id = try await IDResolver(client: client).agent(self.id)
                return try await api { try await client.retireAgent(path: .init(id: id)).ok.body.json }
            }
            if options.output == .json { return try Printer.json(agent) }
            if agent.status == .retiring {
                print("retiring agent \(agent.id) (\(agent.hostname)): it is stopping its runs; its credential dies when they stopped")
            } else {
                print("retired agent \(agent.id) (\(agent.hostname))")
            }
        }
    }
}
