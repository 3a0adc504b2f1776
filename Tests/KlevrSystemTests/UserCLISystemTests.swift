import Foundation
import KlevrAPI
import KlevrTestSupport
import Testing

/// `klevr login`, `klevr user …` and `klevr token …` against a real manager whose first admin got a
/// generated password.
@Suite(.serialized, .timeLimit(.minutes(5)), .waitsForProcesses)
struct UserCLISystemTests {
    /// Runs the CLI with a config file and extra environment (passwords) and returns its status and output.
    static func cli(
        _ cluster: Cluster, _ arguments: [String], config: String = "cli.json", environment: [String: String] = [:]
    ) async throws -> (status: Int32, output: String) {
        let log = cluster.directory + "/cli-\(UUID().uuidString).log"
        var env = ["KLEVR_CONFIG": cluster.directory + "/" + config]
        for (key, value) in environment { env[key] = value }
        let process = try KlevrProcess(arguments, environment: env, logPath: log)
        let deadline = ContinuousClock.now + .seconds(TestTime.scaled(60))
        while process.process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        if process.process.isRunning { await process.kill9() }
        return (process.process.terminationStatus, process.log)
    }

    static func json<T: Decodable>(_ type: T.Type, _ output: String) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(output.utf8))
    }

    static func savedLogin(_ cluster: Cluster, _ config: String = "cli.json") throws -> [String: String] {
        try JSONDecoder().decode([String: String].self, from: Data(contentsOf: URL(fileURLWithPath: cluster.directory + "/" + config)))
    }

    @Test func usersTokensAndTheFirstPasswordChangeThroughTheCLI() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        cluster.manager = try KlevrProcess(
            ["manager", "--data-dir", cluster.directory + "/manager", "--listen", "127.0.0.1:\(cluster.port)", "--log-level", "info"],
            logPath: cluster.directory + "/manager.log")
        var generated = ""
        try await eventually(30, "the manager prints the generated admin password") {
            guard let log = cluster.manager?.log, let range = log.range(of: "with password ") else { return false }
            generated = String(log[range.upperBound...].prefix { !$0.isWhitespace })
            return !generated.isEmpty
        }
        let url = cluster.url
        let first = "first-changed-password"
        let second = "second-changed-password"

        // The generated password gets no token; the CLI says what to do.
        let refused = try await Self.cli(cluster, ["login", "--server", url, "--username", "admin"], environment: ["KLEVR_PASSWORD": generated])
        #expect(refused.status != 0)
        #expect(refused.output.contains("klevr user passwd"), "\(refused.output)")
        #expect(!FileManager.default.fileExists(atPath: cluster.directory + "/cli.json"))

        let changed = try await Self.cli(
            cluster, ["user", "passwd", "--server", url, "--username", "admin"], environment: ["KLEVR_PASSWORD": generated, "KLEVR_NEW_PASSWORD": first])
        #expect(changed.status == 0, "\(changed.output)")
        let afterChange = try Self.savedLogin(cluster)
        #expect(afterChange["username"] == "admin")

        // Logging in again replaces the saved token: one CLI token, not one per login.
        for _ in 0..<2 {
            let login = try await Self.cli(cluster, ["login", "--server", url, "--username", "admin"], environment: ["KLEVR_PASSWORD": first])
            #expect(login.status == 0, "\(login.output)")
        }
        let saved = try Self.savedLogin(cluster)
        let tokens = try await Self.cli(cluster, ["token", "list", "--output", "json"])
        #expect(tokens.status == 0, "\(tokens.output)")
        let listed = try Self.json([Components.Schemas.Token].self, tokens.output)
        #expect(listed.map(\.id) == [saved["tokenId"] ?? "?"])
        #expect(listed.first?.name.hasPrefix("cli@") == true)
        #expect(saved["tokenId"] != afterChange["tokenId"])

        // Users: create, set a role, disable (their saved login dies at once), enable, delete.
        #expect(try await Self.cli(cluster, ["user", "create", "bob", "--role", "operator"], environment: ["KLEVR_NEW_PASSWORD": "bob-password-123"]).status == 0)
        #expect(try await Self.cli(cluster, ["user", "set-role", "bob", "viewer"]).status == 0)
        let users = try Self.json([Components.Schemas.User].self, try await Self.cli(cluster, ["user", "list", "--output", "json"]).output)
        #expect(users.first { $0.username == "bob" }?.role == .viewer)
        let bobLogin = try await Self.cli(
            cluster, ["login", "--server", url, "--username", "bob"], config: "bob.json", environment: ["KLEVR_PASSWORD": "bob-password-123"])
        #expect(bobLogin.status == 0, "\(bobLogin.output)")
        #expect(try await Self.cli(cluster, ["token", "list"], config: "bob.json").status == 0)
        #expect(try await Self.cli(cluster, ["user", "list"], config: "bob.json").status != 0)

        #expect(try await Self.cli(cluster, ["user", "disable", "bob"]).status == 0)
        let bobAfter = try await Self.cli(cluster, ["token", "list"], config: "bob.json")
        #expect(bobAfter.status != 0)
        #expect(bobAfter.output.contains("klevr login"), "\(bobAfter.output)")
        let bobRelogin = try await Self.cli(
            cluster, ["login", "--server", url, "--username", "bob"], config: "bob.json", environment: ["KLEVR_PASSWORD": "bob-password-123"])
        #expect(bobRelogin.status != 0)
        #expect(bobRelogin.output.contains("disabled"), "\(bobRelogin.output)")
        #expect(try await Self.cli(cluster, ["user", "enable", "bob"]).status == 0)
        #expect(try await Self.cli(cluster, ["user", "delete", "bob"]).status == 0)
        let remaining = try Self.json([Components.Schemas.User].self, try await Self.cli(cluster, ["user", "list", "--output", "json"]).output)
        #expect(remaining.map(\.username) == ["admin"])
        let lastAdmin = try await Self.cli(cluster, ["user", "disable", "admin"])
        #expect(lastAdmin.status != 0)
        #expect(lastAdmin.output.contains("last enabled admin"), "\(lastAdmin.output)")

        // Tokens: create with an expiry, list everyone's, revoke.
        let created = try await Self.cli(cluster, ["token", "create", "ci", "--expires-in", "30", "--output", "json"])
        #expect(created.status == 0, "\(created.output)")
        let ci = try Self.json(Components.Schemas.TokenCreated.self, created.output)
        #expect(ci.expiresAt != nil)
        let all = try await Self.cli(cluster, ["token", "list", "--all"])
        #expect(all.output.contains(ci.id) && all.output.contains("admin"), "\(all.output)")
        #expect(try await Self.cli(cluster, ["token", "revoke", ci.id]).status == 0)
        #expect(!(try await Self.cli(cluster, ["token", "list"]).output.contains(ci.id)))

        // A password change ends every token, the CLI's included, and the CLI saves a new one.
        let again = try await Self.cli(cluster, ["user", "passwd"], environment: ["KLEVR_PASSWORD": first, "KLEVR_NEW_PASSWORD": second])
        #expect(again.status == 0, "\(again.output)")
        let renewed = try Self.savedLogin(cluster)
        #expect(renewed["tokenId"] != saved["tokenId"])
        let afterPasswd = try Self.json([Components.Schemas.Token].self, try await Self.cli(cluster, ["token", "list", "--output", "json"]).output)
        #expect(afterPasswd.map(\.id) == [renewed["tokenId"] ?? "?"])

        let log = cluster.manager?.log ?? ""
        for secret in [first, second, "bob-password-123", saved["token"] ?? "", renewed["token"] ?? "", ci.token] where !secret.isEmpty {
            #expect(!log.contains(secret), "a secret is in the manager's log")
        }
    }
}
