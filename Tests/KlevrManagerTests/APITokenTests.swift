import Foundation
import HTTPTypes
import HummingbirdTesting
import KlevrAPI
import KlevrCore
import KlevrManager
import KlevrStore
import Testing

/// API tokens: listed with owner, creation, last use and expiry; expiring; revoked by their owner or an admin.
@Suite struct APITokenTests {
    @Test func usersSeeTheirOwnTokensAndAdminsSeeEveryonesWithOwners() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            let vera = try await client.user("vera", role: .viewer, admin: admin)
            let own = try await client.api(token: vera).listTokens().ok.body.json
            #expect(own.items.map(\.owner) == ["vera"])
            // The token was used to list: its last use is recorded.
            #expect(own.items.first?.lastUsedAt != nil)
            #expect(try await client.call(.get, "/api/v1/tokens?all=true", token: vera).status == .forbidden)
            #expect(try await client.call(.get, "/api/v1/tokens?all=yes", token: admin).status == .unprocessableContent)
            let all = try await client.api(token: admin).listTokens(query: .init(all: true)).ok.body.json
            #expect(Set(all.items.map(\.owner)) == ["admin", "vera"])
            let mine = try await client.api(token: admin).listTokens(query: .init(all: false)).ok.body.json
            #expect(mine.items.map(\.owner) == ["admin"])
        }
    }

    @Test func expiryIsBoundedAndAnExpiredTokenIsRefused() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            let now = Clock.nowMillis()
            let day: Int64 = 86_400_000
            let api = try client.api(token: admin)
            for body in [
                #"{"name":"t","expiresInDays":0}"#, #"{"name":"t","expiresInDays":366}"#, #"{"name":"t","expiresInDays":-1}"#, #"{"name":""}"#,
            ] {
                #expect(try await client.call(.post, "/api/v1/tokens", token: admin, json: body).status == .unprocessableContent, "\(body)")
            }
            #expect(try await api.listTokens().ok.body.json.items.count == 1)

            let week = try await api.createToken(body: .json(.init(name: "week", expiresInDays: 7))).created.body.json
            let expiresAt = try #require(week.expiresAt)
            #expect(abs(expiresAt - (week.createdAt + 7 * day)) < 1000)
            let listed = try await api.listTokens().ok.body.json
            #expect(listed.items.first { $0.id == week.id }?.expiresAt == expiresAt)

            // A token whose time is up authenticates nothing.
            let users = try await harness.manager.store.users()
            let value = Secrets.generate(.apiToken)
            _ = try await harness.manager.store.createToken(
                userID: try #require(users.first?.id), name: "old", tokenHash: Secrets.hash(value), now: now - 2 * day, expiresAt: now - day, actor: .system)
            #expect(try await client.call(.get, "/api/v1/me", token: value).status == .unauthorized)
        }
    }

    @Test func ownersRevokeTheirTokensAndAdminsRevokeAnyone() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            let vera = try await client.user("vera", role: .viewer, admin: admin)
            let veraIDs = try await client.api(token: vera).listTokens().ok.body.json.items.map(\.id)
            let adminIDs = try await client.api(token: admin).listTokens().ok.body.json.items.map(\.id)
            let veraID = try #require(veraIDs.first)
            let adminID = try #require(adminIDs.first)

            // Another user's token is not found for a non-admin, and keeps working.
            #expect(try await client.call(.delete, "/api/v1/tokens/\(adminID)", token: vera).status == .notFound)
            #expect(try await client.call(.get, "/api/v1/me", token: admin).status == .ok)

            let spare = try await client.api(token: vera).createToken(body: .json(.init(name: "spare"))).created.body.json
            #expect(try await client.call(.delete, "/api/v1/tokens/\(spare.id)", token: vera).status == .noContent)
            #expect(try await client.call(.get, "/api/v1/me", token: spare.token).status == .unauthorized)

            #expect(try await client.call(.delete, "/api/v1/tokens/\(veraID)", token: admin).status == .noContent)
            #expect(try await client.call(.get, "/api/v1/me", token: vera).status == .unauthorized)
            #expect(try await client.call(.delete, "/api/v1/tokens/\(veraID)", token: admin).status == .notFound)
        }
    }
}
