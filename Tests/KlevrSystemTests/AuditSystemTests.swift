import Foundation
import KlevrAPI
import KlevrTestSupport
import Testing

/// The audit log through the CLI: what users did, with the actor (session or token) and the client
/// address, and nothing the system or agents did.
@Suite(.serialized, .timeLimit(.minutes(5)), .waitsForProcesses)
struct AuditSystemTests {
    @Test func theAuditLogShowsWhatUsersDidWithTheirAddress() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "z")
        _ = try await cluster.startAgent("a", zone: "z")

        let created = try await UserCLISystemTests.cli(
            cluster, ["user", "create", "bob", "--role", "viewer"], environment: ["KLEVR_NEW_PASSWORD": "bob-password-long-enough"])
        #expect(created.status == 0, "\(created.output)")
        let disabled = try await UserCLISystemTests.cli(cluster, ["user", "disable", "bob"])
        #expect(disabled.status == 0, "\(disabled.output)")

        let audit = try await UserCLISystemTests.cli(cluster, ["audit", "--limit", "100", "--output", "json"])
        #expect(audit.status == 0, "\(audit.output)")
        let entries = try JSONDecoder().decode([Components.Schemas.Event].self, from: Data(audit.output.utf8))
        // Only users and tokens act in the audit log; the agent's enrollment and the system's work are not in it.
        #expect(!entries.isEmpty)
        #expect(entries.allSatisfy { [.user, .token].contains($0.actor.kind) }, "\(entries.map(\.actor.kind.rawValue))")
        #expect(entries.allSatisfy { $0.actor.address == "127.0.0.1" }, "\(entries.map(\.actor.address))")
        let kinds = entries.map(\.kind.rawValue)
        // The CLI's login: a session logged in and created the CLI's token.
        #expect(kinds.contains("user.logged_in") && kinds.contains("token.created"), "\(kinds)")
        // Through the token: the zone, its key, bob created then disabled, in that order.
        let ordered = kinds.filter { ["zone.created", "enroll_key.created", "user.created", "user.disabled"].contains($0) }
        #expect(ordered == ["zone.created", "enroll_key.created", "user.created", "user.disabled"], "\(kinds)")
        let disabling = try #require(entries.last { $0.kind == .user_disabled })
        #expect(disabling.actor.kind == .token && disabling.actor.name == "admin")
        #expect(disabling.detail.additionalProperties["username"] == "bob")

        // Filters: by kind family and by actor name.
        let users = try await UserCLISystemTests.cli(cluster, ["audit", "--kind", "user", "--actor", "admin", "--output", "json"])
        let onlyUsers = try JSONDecoder().decode([Components.Schemas.Event].self, from: Data(users.output.utf8))
        #expect(!onlyUsers.isEmpty && onlyUsers.allSatisfy { $0.kind.rawValue.hasPrefix("user.") && $0.actor.name == "admin" })

        // The table names the actor with the address.
        let table = try await UserCLISystemTests.cli(cluster, ["audit", "--kind", "user.disabled"])
        #expect(table.status == 0 && table.output.contains("token:admin@127.0.0.1") && table.output.contains("username=bob"), "\(table.output)")
    }
}
