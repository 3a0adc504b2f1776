import ArgumentParser
import Foundation
import KlevrAPI
import KlevrAgent
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

struct LoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login", abstract: "Log in to a manager and save an API token for the CLI (file mode 0600).")

    @Option(help: "Manager URL.") var server = "http://127.0.0.1:8090"
    @Option(help: "User name.") var username = "admin"
    @Option(help: "Password (prefer --password-stdin or the KLEVR_PASSWORD environment variable).") var password: String?
    @Flag(help: "Read the password from standard input.") var passwordStdin = false
    @Option(help: "Trust only the CAs of this PEM file for an https:// server (default: the system trust store).") var ca: String?
    @Option(help: "Trust only an https:// server whose certificate's public key has this pin (sha256:<hex>, printed by the manager).")
    var caPin: String?

    func run() async throws {
        var trust: ServerTrust?
        do {
            trust = try ServerTrust.fromOptions(caFile: ca, pin: caPin)
        } catch {
            throw ValidationError(error.description)
        }
        if trust != nil && !server.lowercased().hasPrefix("https://") {
            throw ValidationError("--ca and --ca-pin verify an https:// --server URL")
        }
        var secret = password ?? ProcessInfo.processInfo.environment["KLEVR_PASSWORD"]
        if passwordStdin { secret = readLine(strippingNewline: true) }
        if secret == nil {
            if isatty(STDIN_FILENO) != 0, let typed = getpass("Password for \(username): ") {
                // Read without echo on a terminal.
                secret = String(cString: typed)
            } else {
                secret = readLine(strippingNewline: true)
            }
        }
        guard let secret, !secret.isEmpty else { throw CLIError("no password given") }
        if let chosen = trust {
            // A pin is checked once here; the certificate it matched is saved with the login and trusted
            // by later commands (log in again when the manager's key changes).
            trust = try await api { try await chosen.fetchingPinnedCertificate(server: server) }
        }
        let client = JSONClient(baseURL: server, tls: try trust?.tlsConfiguration())
        let token: TokenCreated = try await api {
            let login = try await client.exchange(.POST, "/api/v1/auth/login", body: LoginRequest(username: username, password: secret))
            let answer = try JSONDecoder().decode(LoginResponse.self, from: login.body)
            guard let cookie = login.headers["Set-Cookie"].first?.split(separator: ";").first else {
                throw CLIError("the manager did not open a session")
            }
            let host = ProcessInfo.processInfo.hostName
            let created = try await client.exchange(
                .POST, "/api/v1/tokens", body: TokenCreateRequest(name: "cli@\(host)"),
                headers: [("Cookie", String(cookie)), ("X-Klevr-CSRF", answer.csrfToken)])
            _ = try? await client.exchange(
                .POST, "/api/v1/auth/logout", headers: [("Cookie", String(cookie)), ("X-Klevr-CSRF", answer.csrfToken)])
            return try JSONDecoder().decode(TokenCreated.self, from: created.body)
        }
        try CLIConfig(server: client.baseURL, token: token.token, trust: trust).save()
        print("Logged in to \(client.baseURL) as \(username); token saved in \(CLIConfig.path())")
    }
}
