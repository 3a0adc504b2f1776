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
        commandName: "login",
        abstract: "Log in to a manager and save an API token for the CLI (file mode 0600).",
        discussion: """
            The token is named cli@HOSTNAME. Logging in again replaces the token saved before (it is revoked),
            so repeated logins leave one token, not many. A user whose password must still be changed (a
            generated first-admin password) gets no token: run 'klevr user passwd' instead.
            """)

    @Option(help: "Manager URL.") var server = "http://127.0.0.1:8090"
    @Option(help: "User name.") var username = "admin"
    @Option(help: "Password (prefer --password-stdin or the KLEVR_PASSWORD environment variable).") var password: String?
    @Flag(help: "Read the password from standard input.") var passwordStdin = false
    @Option(help: "Days until the saved token expires (1 to 365; default: it does not expire).") var tokenExpiresIn: Int?
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
        let secret = try PasswordInput.read(
            explicit: password, environment: "KLEVR_PASSWORD", fromStdin: passwordStdin, prompt: "Password for \(username): ")
        if let chosen = trust {
            // A pin is checked once here; the certificate it matched is saved with the login and trusted
            // by later commands (log in again when the manager's key changes).
            trust = try await api { try await chosen.fetchingPinnedCertificate(server: server) }
        }
        let session = try await SessionLogin.open(server: server, username: username, password: secret, trust: trust)
        if session.passwordChangeRequired {
            await session.close()
            throw CLIError(
                "the password of '\(username)' must be changed before first use: run "
                    + "'klevr user passwd --server \(session.client.baseURL) --username \(username)' (it logs in as well)")
        }
        let config = try await session.saveCLIToken(expiresInDays: tokenExpiresIn)
        await session.close()
        print("Logged in to \(config.server) as \(username); token saved in \(CLIConfig.path())")
    }
}

/// Reading a password: from an option, an environment variable, standard input, or a terminal prompt
/// without echo.
enum PasswordInput {
    static func read(explicit: String?, environment: String, fromStdin: Bool, prompt: String) throws -> String {
        var secret = explicit ?? ProcessInfo.processInfo.environment[environment]
        if fromStdin { secret = readLine(strippingNewline: true) }
        if secret == nil {
            if isatty(STDIN_FILENO) != 0, let typed = getpass(prompt) {
                secret = String(cString: typed)
            } else {
                secret = readLine(strippingNewline: true)
            }
        }
        guard let secret, !secret.isEmpty else { throw CLIError("no password given") }
        return secret
    }
}

/// A session opened with a user name and password (cookie and CSRF token), for the few commands that
/// work before there is a saved token: `login` and `user passwd`.
struct SessionLogin {
    var client: JSONClient
    var username: String
    var cookie: String
    var csrf: String
    var passwordChangeRequired: Bool
    /// How the manager's certificate is verified (nil: the system trust store, or plain http).
    var trust: ServerTrust?

    var headers: [(String, String)] { [("Cookie", cookie), ("X-Klevr-CSRF", csrf)] }

    static func open(server: String, username: String, password: String, trust: ServerTrust? = nil) async throws -> SessionLogin {
        let client = JSONClient(baseURL: server, tls: try trust?.tlsConfiguration())
        return try await api {
            let login = try await client.exchange(.POST, "/api/v1/auth/login", body: LoginRequest(username: username, password: password))
            let answer = try JSONDecoder().decode(LoginResponse.self, from: login.body)
            guard let cookie = login.headers["Set-Cookie"].first?.split(separator: ";").first else {
                throw CLIError("the manager did not open a session")
            }
            return SessionLogin(
                client: client, username: username, cookie: String(cookie), csrf: answer.csrfToken,
                passwordChangeRequired: answer.passwordChangeRequired, trust: trust)
        }
    }

    /// Creates the CLI's token (`cli@HOSTNAME`), saves it, and revokes the token the CLI had saved before
    /// for this manager (it may already be gone: a password change ends every token).
    func saveCLIToken(expiresInDays: Int?) async throws -> CLIConfig {
        let previous = CLIConfig.loadIfPresent()
        let host = ProcessInfo.processInfo.hostName
        let token: TokenCreated = try await api {
            let created = try await client.exchange(
                .POST, "/api/v1/tokens", body: TokenCreateRequest(name: "cli@\(host)", expiresInDays: expiresInDays), headers: headers)
            return try JSONDecoder().decode(TokenCreated.self, from: created.body)
        }
        let config = CLIConfig(server: client.baseURL, token: token.token, trust: trust, username: username, tokenId: token.id)
        try config.save()
        if let previous, previous.server == client.baseURL, let oldID = previous.tokenId, oldID != token.id {
            _ = try? await client.exchange(.DELETE, "/api/v1/tokens/\(oldID.urlPathEscaped)", headers: headers)
        }
        return config
    }

    /// Ends the session (the saved token, if any, stays).
    func close() async {
        _ = try? await client.exchange(.POST, "/api/v1/auth/logout", headers: headers)
    }
}
