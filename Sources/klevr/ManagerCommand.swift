import ArgumentParser
import Foundation
import Hummingbird
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
    static let configuration = CommandConfiguration(commandName: "manager", abstract: "Run the manager (API and background services).")

    @Option(help: "Directory for the SQLite database and other state.") var dataDir = "./klevr-data"
    @Option(help: "Address to listen on.") var listen = "127.0.0.1:8090"
    @Option(help: "sqlite:PATH (default: DATA_DIR/klevr.db) or postgres://user:password@host:port/database") var database: String?
    @Option(help: "Password for the first admin (default: generated and printed once; env KLEVR_ADMIN_PASSWORD).")
    var adminPassword: String?
    @Option(help: "Agent heartbeat interval in seconds.") var heartbeat = 5
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel = "info"

    func run() async throws {
        LogSetup.bootstrap(level: logLevel)
        let (host, port) = try parseListen(listen)
        guard (1...300).contains(heartbeat) else { throw ValidationError("--heartbeat must be 1 to 300 seconds") }
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let databaseURL = try DatabaseURL.parse(database ?? "sqlite:\(dataDir)/klevr.db")
        let password = adminPassword ?? ProcessInfo.processInfo.environment["KLEVR_ADMIN_PASSWORD"]
        let logger = Logger(label: "klevr.manager")
        let config = ManagerConfig(
            host: host, port: port, database: databaseURL, adminPassword: password, heartbeatSeconds: heartbeat,
            signingKey: try SigningKeyFile.loadOrCreate(dataDir: dataDir))
        let (manager, generated) = try await Manager.bootstrap(config: config, logger: logger)
        if let generated { printAdminPassword(generated) }
        let app = manager.application(
            onGeneratedPassword: printAdminPassword,
            onServerRunning: { port in say("klevr manager listening on http://\(host):\(port) (database \(databaseURL))") })
        do {
            try await app.runService()
        } catch {
            await manager.store.database.close()
            throw error
        }
        await manager.store.database.close()
    }
}

/// Prints the first admin's password, the one time it exists in clear.
func printAdminPassword(_ password: String) {
    say(
        "First start: created user 'admin' with password \(password)  (shown once; it must be changed at first login: "
            + "klevr user passwd --server URL --username admin)")
}
