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
            let own = try await client.decode(Page<TokenView>.self, .get, "/api/v1/tokens", token: vera)
            #expect(own.items.map(\.owner) == ["vera"])
            // The token was used to list: its last use is recorded.
            #expect(own.items.first?.lastUsedAt != nil)
            #expect(try await client.call(.get, "/api/v1/tokens?all=true", token: vera).status == .forbidden)
            #expect(try await client.call(.get, "/api/v1/tokens?all=yes", token: admin).status == .unprocessableContent)
            let all = try await client.decode(Page<TokenView>.self, .get, "/api/v1/tokens?all=true", token: admin)
            #expect(Set(all.items.map(\.owner)) == ["admin", "vera"])
            let mine = try await client.decode(Page<TokenView>.self, .get, "/api/v1/tokens?all=false", token: admin)
            #expect(mine.items.map(\.owner) == ["admin"])
        }
    }

    @Test func expiryIsBoundedAndAnExpiredTokenIsRefused() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            let now = Clock.nowMillis()
            let day: Int64 = 86_400_000
            for bad in [
                TokenCreateRequest(name: "t", expiresInDays: 0), TokenCreateRequest(name: "t", expiresInDays: 366),
                TokenCreateRequest(name: "t", expiresInDays: -1), TokenCreateRequest(name: ""),
            ] {
                let body = String(decoding: try JSONEncoder().encode(bad), as: UTF8.self)
                #expect(try await client.call(.post, "/api/v1/tokens", token: admin, json: body).status == .unprocessableContent, "\(body)")
            }
            #expect(try await client.decode(Page<TokenView>.self, .get, "/api/v1/tokens", token: admin).items.count == 1)

            let week = try await client.decode(
                TokenCreated.self, .post, "/api/v1/tokens", token: admin, body: TokenCreateRequest(name: "week", expiresInDays: 7), expect: .created)
            let expiresAt = try #require(week.expiresAt)
            #expect(abs(expiresAt - (week.createdAt + 7 * day)) < 1000)
            let listed = try await client.decode(Page<TokenView>.self, .get, "/api/v1/tokens", token: admin)
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
            let veraIDs = try await client.decode(Page<TokenView>.self, .get, "/api/v1/tokens", token: vera).items.map(\.id)
            let adminIDs = try await client.decode(Page<TokenView>.self, .get, "/api/v1/tokens", token: admin).items.map(\.id)
            let veraID = try #require(veraIDs.first)
            let adminID = try #require(adminIDs.first)

            // Another user's token is not found for a non-admin, and keeps working.
            #expect(try await client.call(.delete, "/api/v1/tokens/\(adminID)", token: vera).status == .notFound)
            #expect(try await client.call(.get, "/api/v1/me", token: admin).status == .ok)

            let spare = try await client.decode(
                TokenCreated.self, .post, "/api/v1/tokens", token: vera, body: TokenCreateRequest(name: "spare"), expect: .created)
            #expect(try await client.call(.delete, "/api/v1/tokens/\(spare.id)", token: vera).status == .noContent)
            #expect(try await client.call(.get, "/api/v1/me", token: spare.token).status == .unauthorized)

            #expect(try await client.call(.delete, "/api/v1/tokens/\(veraID)", token: admin).status == .noContent)
            #expect(try await client.call(.get, "/api/v1/me", token: vera).status == .unauthorized)
            #expect(try await client.call(.delete, "/api/v1/tokens/\(veraID)", token: admin).status == .notFound)
        }
    }
}
