import ArgumentParser
import Foundation
import Hummingbird
import KlevrAPI
import KlevrManager
import KlevrStore
import Logging
import ServiceLifecycle

/// Parses `HOST:PORT`.
func parseListen(_ text: String) throws -> (host: String, port: Int) {
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
        throw ValidationError("--listen must be HOST:PORT, e.g. 127.0.0.1:8090")
    }
    var host = String(text[..<colon])
    if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    return (host.isEmpty ? "0.0.0.0" : host, port)
}

struct ManagerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manager", abstract: "Run the manager (default), or rotate its master key.", subcommands: [Serve.self, RotateMasterKey.self],
        defaultSubcommand: Serve.self)
}

extension ManagerCommand {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the manager (API and background services).")

        @Option(help: "Directory for the SQLite database and other state.") var dataDir = "./klevr-data"
        @Option(help: "Address to listen on.") var listen = "127.0.0.1:8090"
        @Option(help: "sqlite:PATH (default: DATA_DIR/klevr.db) or postgres://user:password@host:port/database") var database: String?
        @Option(help: "Password for the first admin (default: generated and printed once; env KLEVR_ADMIN_PASSWORD).")
        var adminPassword: String?
        @Option(help: "Agent heartbeat interval in seconds.") var heartbeat = 5
        @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel = "info"
        @Option(help: "Serve HTTPS with this PEM certificate (chain: the served certificate first); needs --tls-key.") var tlsCert: String?
        @Option(help: "The PEM private key of --tls-cert.") var tlsKey: String?
        @Flag(help: "Serve plain HTTP beyond loopback: only when a TLS proxy in front of the manager terminates HTTPS.")
        var insecureHTTP = false
        @Option(help: "At most this many connections at once (agents outside zones hold one each); more wait in the listen backlog.")
        var maxConnections = 512
        @Option(help: "Remove finished runs (with their output) and finished webhook deliveries this many days after they ended; 0 keeps them.")
        var keepRunsDays = 90
        @Option(help: "Remove events (the event and audit logs) this many days after they happened; 0 keeps them.")
        var keepEventsDays = 365

        func run() async throws {
            LogSetup.bootstrap(level: logLevel)
            let (host, port) = try parseListen(listen)
            guard (1...300).contains(heartbeat) else { throw ValidationError("--heartbeat must be 1 to 300 seconds") }
            guard (16...100_000).contains(maxConnections) else { throw ValidationError("--max-connections must be 16 to 100000") }
            guard (0...36_500).contains(keepRunsDays) else { throw ValidationError("--keep-runs-days must be 0 (keep) to 36500") }
            guard (0...36_500).contains(keepEventsDays) else { throw ValidationError("--keep-events-days must be 0 (keep) to 36500") }
            // Checked before anything is created, so that a refused start leaves nothing behind.
            let tls: ManagerTLS?
            switch (tlsCert, tlsKey) {
            case (nil, nil):
                tls = nil
            case (.some(let certificate), .some(let key)):
                do {
                    tls = try ManagerTLS.load(certificatePath: certificate, keyPath: key)
                } catch {
                    throw ValidationError(error.description)
                }
            default:
                throw ValidationError("--tls-cert and --tls-key go together")
            }
            if tls != nil && insecureHTTP { throw ValidationError("--insecure-http and --tls-cert contradict each other: give one") }
            do {
                try ListenPolicy.check(host: host, port: port, tls: tls != nil, insecureHTTP: insecureHTTP)
            } catch {
                throw ValidationError(error.description)
            }
            try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let databaseURL = try DatabaseURL.parse(database ?? "sqlite:\(dataDir)/klevr.db")
            let password = adminPassword ?? ProcessInfo.processInfo.environment["KLEVR_ADMIN_PASSWORD"]
            let logger = Logger(label: "klevr.manager")
            var config = ManagerConfig(
                host: host, port: port, database: databaseURL, adminPassword: password, heartbeatSeconds: heartbeat,
                signingKey: try SigningKeyFile.loadOrCreate(dataDir: dataDir), secretBox: try MasterKeyFiles.load(dataDir: dataDir), tls: tls,
                behindTLSProxy: insecureHTTP)
            config.maxConnections = maxConnections
            config.runRetentionDays = keepRunsDays
            config.eventRetentionDays = keepEventsDays
            let (manager, generated) = try await Manager.bootstrap(config: config, logger: logger)
            if let generated { printAdminPassword(generated) }
            let app = manager.application(
                onGeneratedPassword: printAdminPassword,
                onServerRunning: { port in
                    let origin = "\(tls == nil ? "http" : "https")://\(host.contains(":") ? "[\(host)]" : host):\(port)"
                    say("klevr manager listening on \(origin) (database \(databaseURL)); web console: \(origin)/console/")
                    if let tls { say(ManagerCommand.pinAdvice(tls.pin, host: host, port: port)) }
                })
            do {
                try await app.runService()
            } catch {
                await manager.store.database.close()
                throw error
            }
            await manager.store.database.close()
        }
    }

    struct RotateMasterKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-master-key",
            abstract: "Replace the master key and re-encrypt every stored secret under the new one (stop the manager first).")

        @Option(help: "The manager's data directory (holds master.key).") var dataDir = "./klevr-data"
        @Option(help: "sqlite:PATH (default: DATA_DIR/klevr.db) or postgres://user:password@host:port/database") var database: String?

        func run() async throws {
            LogSetup.bootstrap(level: "warning")
            guard FileManager.default.fileExists(atPath: dataDir + "/" + MasterKeyFiles.currentName) else {
                throw ValidationError("\(dataDir)/\(MasterKeyFiles.currentName) does not exist: give the manager's --data-dir")
            }
            let databaseURL = try DatabaseURL.parse(database ?? "sqlite:\(dataDir)/klevr.db")
            let store = try await Store.open(databaseURL, logger: Logger(label: "klevr.rotate"))
            do {
                try await store.migrate()
                let result = try await MasterKeyFiles.rotate(dataDir: dataDir) { box in try await store.resealSecrets(with: box) }
                say("master key \(result.old) replaced by \(result.new); \(result.count) stored secrets re-encrypted")
                say("the old key stays in \(dataDir)/\(MasterKeyFiles.retiredPrefix)\(result.old) for older backups; delete it when they are gone")
            } catch {
                await store.database.close()
                throw error
            }
            await store.database.close()
        }
    }
}

extension ManagerCommand {
    /// What the manager prints at start with TLS: its certificate's pin and how clients use it.
    static func pinAdvice(_ pin: CertificatePin, host: String, port: Int) -> String {
        let name = ListenPolicy.isLoopback(host) || !["0.0.0.0", "::", ""].contains(host) ? host : "HOST"
        let url = "https://\(name.contains(":") ? "[\(name)]" : name):\(port)"
        return """
            TLS certificate pin: \(pin)
              log in:          klevr login --server \(url) --ca-pin \(pin)
              start an agent:  KLEVR_ENROLL_KEY=<key> klevr agent --manager \(url) --ca-pin \(pin) --zone ZONE
            """
    }
}

/// Prints the first admin's password, the one time it exists in clear.
func printAdminPassword(_ password: String) {
    say(
        "First start: created user 'admin' with password \(password)  (shown once; it must be changed at first login: "
            + "klevr user passwd --server URL --username admin)")
}
