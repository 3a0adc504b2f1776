import ArgumentParser
import Foundation
import Hummingbird
import Crypto
import KlevrAPI
import KlevrAgent
import KlevrCore
import KlevrManager
import KlevrStore
import Logging
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "All in one: a manager with SQLite under ./klevr-data, a zone 'local' and local agents. Ctrl-C stops everything.")

    @Option(help: "Directory for all state; a second 'klevr up' reuses it.") var dataDir = "./klevr-data"
    @Option(help: "Address of the manager.") var listen = "127.0.0.1:8090"
    @Option(help: "Number of local agents.") var agents = 3
    @Option(help: "Log level.") var logLevel = "notice"

    func run() async throws {
        LogSetup.bootstrap(level: logLevel)
        let (host, port) = try parseListen(listen)
        guard (0...20).contains(agents) else { throw ValidationError("--agents must be 0 to 20") }
        let dataDir = URL(fileURLWithPath: self.dataDir).standardizedFileURL.path
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let logger = Logger(label: "klevr.up")
        let config = ManagerConfig(
            host: host, port: port, database: .sqlite(path: dataDir + "/klevr.db"), signingKey: try SigningKeyFile.loadOrCreate(dataDir: dataDir),
            secretBox: try MasterKeyFiles.load(dataDir: dataDir),
            // The demo's admin password stays in klevr-data/admin-password for the next 'up'; no forced change.
            generatedAdminMustChangePassword: false)
        let (manager, generated) = try await Manager.bootstrap(config: config, logger: logger)
        do {
            try await serve(manager, generated: generated, dataDir: dataDir, host: host, port: port, logger: logger)
        } catch {
            await manager.store.database.close()
            throw error
        }
        await manager.store.database.close()
    }

    func serve(_ manager: Manager, generated: String?, dataDir: String, host: String, port: Int, logger: Logger) async throws {

        // The demo keeps the first admin password in a 0600 file so that a second 'up' can show it again.
        let passwordFile = dataDir + "/admin-password"
        if let generated {
            try? FileManager.default.removeItem(atPath: passwordFile)
            try PrivateFile.create(passwordFile, contents: Data(generated.utf8))
        }
        let password = (try? String(contentsOfFile: passwordFile, encoding: .utf8)) ?? "(set at first start; not stored)"

        let now = Clock.nowMillis()
        if try await manager.store.zone(named: "local") == nil {
            _ = try await manager.store.createZone(name: "local", description: "agents started by 'klevr up'", now: now, actor: .system)
        }
        // A short-lived key for agents that are not enrolled yet; it reaches them through the environment,
        // never the command line.
        let enrollKey = Secrets.generate(.enrollKey) + "." + Keys.pin(of: manager.config.signingKey.publicKey)
        _ = try await manager.store.createEnrollKey(
            zoneName: "local", keyHash: Secrets.hash(enrollKey), prefix: String(enrollKey.prefix(10)), now: now, expiresAt: now + 10 * 60 * 1000, actor: .system)

        let children = AgentProcesses(
            count: agents, stateRoot: dataDir + "/agents", enrollKey: enrollKey, logLevel: logLevel == "notice" ? "warning" : logLevel)
        let app = manager.application(onServerRunning: { port in
            // The port the manager got (`--listen …:0` picks one).
            let url = "http://\(host == "0.0.0.0" ? "127.0.0.1" : host.contains(":") ? "[\(host)]" : host):\(port)"
            say(
                """

                Klevr is up.
                  console:   \(url)/console/
                  API:       \(url)/api/v1   (OpenAPI document: \(url)/api/v1/openapi.yaml)
                  user:      admin
                  password:  \(password)
                  zone:      local, with \(agents) agent(s) electing a primary; the last one has no manager URL
                             and reaches the manager through the primary (state under \(dataDir)/agents)

                Try:
                  klevr login --server \(url) --username admin
                  klevr agent list
                  klevr task run --zone local --all --param WHO=world -- 'uname -n; echo "hello $KLEVR_PARAM_WHO"'

                Ctrl-C stops the manager and the agents.
                """)
            await children.start(managerURL: url, preferredPeerPort: port + 11)
        })
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: app), .init(service: children)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// The local agents of `klevr up`, as child processes of this binary. Listed after the manager in the
/// service group, so they are stopped first: SIGTERM (then
/// SIGKILL after 10 s) when the group shuts down, before the manager stops.
actor AgentProcesses: Service {
    let count: Int
    let stateRoot: String
    let enrollKey: String
    let logLevel: String
    private var processes: [Process] = []

    init(count: Int, stateRoot: String, enrollKey: String, logLevel: String) {
        self.count = count
        self.stateRoot = stateRoot
        self.enrollKey = enrollKey
        self.logLevel = logLevel
    }

    /// The agents' peer ports: consecutive ones from `preferred` (the manager's port + 11) where they are
    /// free, so that they stay the same from one `up` to the next; any free port instead of one in use.
    func peerPorts(preferred: Int) -> [Int] {
        var ports: [Int] = []
        for index in 0..<count {
            let wanted = preferred + index
            if wanted > 1024 && LoopbackPort.isFree(wanted) && !ports.contains(wanted) {
                ports.append(wanted)
            } else if let any = try? LoopbackPort.free(), !ports.contains(any) {
                ports.append(any)
            } else {
                ports.append(wanted)
            }
        }
        return ports
    }

    func start(managerURL: String, preferredPeerPort: Int) {
        guard processes.isEmpty else { return }
        let executable = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        let peerPorts = peerPorts(preferred: preferredPeerPort)
        for index in 1...max(count, 1) where count > 0 {
            let process = Process()
            process.executableURL = executable
            // One zone with election: every agent has a peer port; the last of three or more has no manager
            // URL and reaches the manager through the primary.
            var arguments = [
                "agent", "run", "--zone", "local", "--state-dir", "\(stateRoot)/agent-\(index)", "--log-level", logLevel,
                "--listen", "127.0.0.1:\(peerPorts[index - 1])",
            ]
            if index == count && count >= 3 {
                for peer in 1..<index { arguments += ["--peer", "127.0.0.1:\(peerPorts[peer - 1])"] }
            } else {
                arguments += ["--manager", managerURL]
            }
            process.arguments = arguments
            var environment = ProcessInfo.processInfo.environment
            environment["KLEVR_ENROLL_KEY"] = enrollKey
            process.environment = environment
            do {
                try process.run()
                processes.append(process)
            } catch {
                say("could not start agent \(index): \(error)")
            }
        }
    }

    /// Starts again each agent that exited with the status of `agent.restart` (a built-in command);
    /// an agent that stopped otherwise (`agent.shutdown`, a crash) stays stopped.
    func restartRequested() {
        for (index, process) in processes.enumerated()
        where !process.isRunning && process.terminationReason == .exit && process.terminationStatus == BuiltinCommands.restartExitStatus {
            let again = Process()
            again.executableURL = process.executableURL
            again.arguments = process.arguments
            again.environment = process.environment
            do {
                try again.run()
                processes[index] = again
            } catch {
                say("could not restart agent \(index + 1): \(error)")
            }
        }
    }

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            restartRequested()
            try? await Task.sleep(for: .milliseconds(500))
        }
        for process in processes where process.isRunning { process.terminate() }
        let deadline = ContinuousClock.now + .seconds(10)
        while processes.contains(where: \.isRunning) && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        for process in processes where process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}
