import ArgumentParser
import Foundation
import KlevrAPI
import KlevrClient

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
        let config = try await SessionLogin.with(server: server, username: username, password: secret, trust: trust) { session in
            if session.passwordChangeRequired {
                throw CLIError(
                    "the password of '\(username)' must be changed before first use: run "
                        + "'klevr user passwd --server \(session.server) --username \(username)' (it logs in as well)")
            }
            return try await session.saveCLIToken(expiresInDays: tokenExpiresIn)
        }
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
    /// A client that sends the session's cookie and CSRF token.
    var client: Client
    /// The manager's URL as the client uses it (no trailing slash).
    var server: String
    var username: String
    var passwordChangeRequired: Bool
    /// How the manager's certificate is verified (nil: the system trust store, or plain http).
    var trust: ServerTrust?

    /// Logs in, runs `body` with the session, and ends the session afterwards (also when `body` fails).
    static func with<T>(
        server: String, username: String, password: String, trust: ServerTrust? = nil, _ body: (SessionLogin) async throws -> T
    ) async throws -> T {
        let config: ManagerClientConfig
        do {
            config = try ManagerClientConfig(server: server, trust: trust)
        } catch {
            throw ValidationError("\(error)")
        }
        return try await ManagerClient.withHTTPClient(for: config) { http in
            let session = try await api {
                let answer = try await ManagerClient.make(config, http: http).login(body: .json(.init(username: username, password: password))).ok
                guard let cookie = answer.headers.setCookie?.split(separator: ";").first else {
                    throw CLIError("the manager did not open a session")
                }
                let login = try answer.body.json
                let client = ManagerClient.make(config.authenticated(as: .session(cookie: String(cookie), csrf: login.csrfToken)), http: http)
                return SessionLogin(
                    client: client, server: config.server, username: username, passwordChangeRequired: login.passwordChangeRequired, trust: trust)
            }
            let result: T
            do {
                result = try await body(session)
            } catch {
                await session.close()
                throw error
            }
            await session.close()
            return result
        }
    }

    /// Creates the CLI's token (`cli@HOSTNAME`), saves it, and revokes the token the CLI had saved before
    /// for this manager (it may already be gone: a password change ends every token).
    func saveCLIToken(expiresInDays: Int?) async throws -> CLIConfig {
        let previous = CLIConfig.loadIfPresent()
        let host = ProcessInfo.processInfo.hostName
        let token = try await api {
            try await client.createToken(body: .json(.init(name: "cli@\(host)", expiresInDays: expiresInDays))).created.body.json
        }
        let config = CLIConfig(server: server, token: token.token, trust: trust, username: username, tokenId: token.id)
        try config.save()
        if let previous, previous.server == server, let oldID = previous.tokenId, oldID != token.id {
            _ = try? await client.deleteToken(path: .init(id: oldID))
        }
        return config
    }

    /// Ends the session (the saved token, if any, stays).
    func close() async {
        _ = try? await client.logout()
    }
}
