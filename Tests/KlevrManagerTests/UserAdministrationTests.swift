import Foundation
import HTTPTypes
import HummingbirdTesting
import KlevrAPI
import KlevrCore
import KlevrManager
import Testing

/// Admins create, disable, enable and delete users and set their roles; the last enabled admin stays.
@Suite struct UserAdministrationTests {
    @Test func disablingAUserEndsTheirSessionsAndTokensAtOnce() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            let bobToken = try await client.user("bob", role: .operator_, admin: admin)
            let bobSession = try await client.session("bob", "password-of-bob")
            #expect(try await client.call(.get, "/api/v1/zones", token: bobToken).status == .ok)

            let api = try client.api(token: admin)
            let disabled = try await api.disableUser(path: .init(username: "bob")).ok.body.json
            #expect(disabled.disabledAt != nil)
            #expect(try await client.call(.get, "/api/v1/zones", token: bobToken).status == .unauthorized)
            #expect(try await client.call(.get, "/api/v1/me", headers: bobSession.headers).status == .unauthorized)
            let login = try await client.api().login(body: .json(.init(username: "bob", password: "password-of-bob")))
            #expect(login.status == .forbidden)
            #expect(try login.forbidden.body.applicationProblemJson._type.hasSuffix("/user-disabled"), "\(login)")
            let tokens = try await api.listTokens(query: .init(all: true)).ok.body.json
            #expect(!tokens.items.contains { $0.owner == "bob" })

            // Enabling brings no old credential back; bob logs in anew.
            let enabled = try await api.enableUser(path: .init(username: "bob")).ok.body.json
            #expect(enabled.disabledAt == nil)
            #expect(try await client.call(.get, "/api/v1/zones", token: bobToken).status == .unauthorized)
            let fresh = try await client.token("bob", "password-of-bob")
            #expect(try await client.call(.get, "/api/v1/zones", token: fresh).status == .ok)
        }
    }

    @Test func theLastEnabledAdminCannotBeDisabledDemotedOrDeleted() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            for (method, path, json) in [
                (HTTPRequest.Method.post, "/api/v1/users/admin/disable", nil as String?), (.put, "/api/v1/users/admin/role", #"{"role":"viewer"}"#),
                (.delete, "/api/v1/users/admin", nil),
            ] {
                let refused = try await client.call(method, path, token: admin, json: json)
                #expect(refused.status == .conflict, "\(method) \(path): \(refused.body)")
            }
            let me = try await client.api(token: admin).me().ok.body.json
            #expect(me.role == .admin && me.disabledAt == nil)

            // With a second admin, the first may step down; then the second is the last one.
            let adaToken = try await client.user("ada", role: .admin, admin: admin)
            let demoted = try await client.api(token: adaToken).setUserRole(path: .init(username: "admin"), body: .json(.init(role: .viewer))).ok.body.json
            #expect(demoted.role == .viewer)
            #expect(try await client.call(.get, "/api/v1/users", token: admin).status == .forbidden)
            #expect(try await client.call(.post, "/api/v1/users/ada/disable", token: adaToken).status == .conflict)
        }
    }

    @Test func badRequestsChangeNothing() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            _ = try await client.user("vic", role: .viewer, admin: admin)
            #expect(try await client.call(.put, "/api/v1/users/vic/role", token: admin, json: #"{"role":"root"}"#).status == .unprocessableContent)
            #expect(try await client.call(.put, "/api/v1/users/nobody/role", token: admin, json: #"{"role":"admin"}"#).status == .notFound)
            #expect(try await client.call(.post, "/api/v1/users/Not%20A%20Name/disable", token: admin).status == .notFound)
            #expect(try await client.call(.delete, "/api/v1/users/nobody", token: admin).status == .notFound)
            let users = try await client.api(token: admin).listUsers().ok.body.json
            let vic = try #require(users.items.first { $0.username == "vic" })
            #expect(vic.role == .viewer && vic.disabledAt == nil)
        }
    }

    @Test func aDeletedUserLosesTheirTokensButTheirTasksStay() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            let otto = try await client.user("otto", role: .operator_, admin: admin)
            let key = try await client.zoneWithKey("zone-a", admin: admin)
            _ = try await client.enroll(zone: "zone-a", key: key.key)
            let task = try await client.api(token: otto).createTask(
                body: .json(.init(zone: "zone-a", target: .allAgents, steps: [.init(script: "true")]))
            ).created.body.json

            #expect(try await client.call(.delete, "/api/v1/users/otto", token: admin).status == .noContent)
            #expect(try await client.call(.get, "/api/v1/zones", token: otto).status == .unauthorized)
            let api = try client.api(token: admin)
            let kept = try await api.getTask(path: .init(id: task.id)).ok.body.json
            #expect(kept.createdBy == "otto")
            let users = try await api.listUsers().ok.body.json
            #expect(users.items.map(\.username) == ["admin"])
            // The name is free again.
            _ = try await client.user("otto", role: .viewer, admin: admin)
        }
    }
}
