import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KlevrAPI
import KlevrCore
import KlevrManager
import Testing

/// Every route of the OpenAPI document: 401 without credentials (except the public ones), and 403 for a
/// viewer on every operation that needs more than the viewer role.
@Suite struct RouteAuthorizationTests {
    struct Operation: CustomStringConvertible {
        var method: HTTPRequest.Method
        var path: String
        var role: String
        var description: String { "\(method) \(path) [\(role)]" }
    }

    /// Every operation of the document, read by the same parser the server's Authorizer uses.
    static func operations() throws -> [Operation] {
        try OpenAPIDocument.operations(try #require(OpenAPIDocument.text())).map {
            Operation(method: HTTPRequest.Method($0.method) ?? .get, path: $0.path, role: $0.role)
        }
    }

    static func concrete(_ path: String) -> String {
        path.replacingOccurrences(of: "{id}", with: Secrets.newID()).replacingOccurrences(of: "{zone}", with: "zone-a")
            .replacingOccurrences(of: "{username}", with: "admin")
    }

    @Test func documentListsEveryOperationWithARole() throws {
        let text = try #require(OpenAPIDocument.text())
        let operations = try Self.operations()
        // Every operation of the document is read, none is skipped.
        #expect(operations.count == text.components(separatedBy: "\n      operationId: ").count - 1)
        #expect(operations.count >= 30)
        #expect(Set(operations.map(\.role)).isSubset(of: ["public", "viewer", "operator", "admin", "agent"]))
        #expect(operations.contains { $0.path == "/api/v1/agent/sync" && $0.role == "agent" })
    }

    @Test func everyRouteButThePublicOnesNeedsCredentials() async throws {
        let harness = try await TestManager.make()
        let operations = try Self.operations()
        try await harness.test { client in
            for operation in operations where operation.role != "public" {
                let answer = try await client.call(operation.method, Self.concrete(operation.path), json: operation.method == .get ? nil : "{}")
                #expect(answer.status == .unauthorized, "\(operation): \(answer.status)")
                #expect(answer.headers[.contentType] == "application/problem+json", "\(operation)")
            }
            // A wrong token is no better than none.
            let forged = try await client.call(.get, "/api/v1/zones", token: "klt_" + Secrets.randomToken(bytes: 32))
            #expect(forged.status == .unauthorized)
            #expect(try await client.call(.get, "/healthz").status == .ok)
            #expect(try await client.call(.get, "/readyz").status == .ok)
        }
    }

    @Test func viewersCannotWriteAndAgentsCannotActAsUsers() async throws {
        let harness = try await TestManager.make()
        let operations = try Self.operations()
        try await harness.test { client in
            let admin = try await client.token()
            let viewer = try await client.user("vera", role: .viewer, admin: admin)
            let key = try await client.zoneWithKey("zone-a", admin: admin)
            let agent = try await client.enroll(zone: "zone-a", key: key.key)
            for operation in operations where ["operator", "admin", "agent"].contains(operation.role) {
                let answer = try await client.call(
                    operation.method, Self.concrete(operation.path), token: viewer, json: operation.method == .get ? nil : "{}")
                #expect(answer.status == .forbidden, "viewer on \(operation): \(answer.status) \(answer.body)")
            }
            for operation in operations where ["viewer", "operator", "admin"].contains(operation.role) {
                let answer = try await client.call(
                    operation.method, Self.concrete(operation.path), token: agent.credential, json: operation.method == .get ? nil : "{}")
                #expect(answer.status == .forbidden, "agent on \(operation): \(answer.status)")
            }
            // Operators may run tasks but not manage zones.
            let operatorToken = try await client.user("otto", role: .operator_, admin: admin)
            #expect(try await client.call(.post, "/api/v1/zones", token: operatorToken, json: #"{"name":"x"}"#).status == .forbidden)
            let task = try await client.api(token: operatorToken).createTask(
                body: .json(.init(zone: "zone-a", target: .allAgents, steps: [.init(script: "true")])))
            #expect(try task.created.body.json.createdBy == "otto", "\(task)")
        }
    }

    @Test func cookieWritesNeedTheCSRFHeader() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let login = try await client.call(.post, "/api/v1/auth/login", json: #"{"username":"admin","password":"\#(TestManager.adminPassword)"}"#)
            let cookieHeader = try #require(login.headers[.setCookie])
            #expect(cookieHeader.contains("HttpOnly"))
            #expect(cookieHeader.contains("SameSite=Strict"))
            let cookie = try #require(cookieHeader.split(separator: ";").first.map(String.init))
            #expect(try await client.call(.get, "/api/v1/zones", headers: [.cookie: cookie]).status == .ok)
            let withoutCSRF = try await client.call(.post, "/api/v1/zones", json: #"{"name":"csrf"}"#, headers: [.cookie: cookie])
            #expect(withoutCSRF.status == .forbidden)
            #expect(try await client.call(.get, "/api/v1/zones/csrf", headers: [.cookie: cookie]).status == .notFound)
        }
    }

    /// The server enforces the document: the same manager with one role changed in the document lets
    /// a viewer do what only an admin could, and a document without a role for an operation is refused.
    @Test func aRoleChangeInTheDocumentChangesWhatTheServerEnforces() async throws {
        let harness = try await TestManager.make()
        let text = try #require(OpenAPIDocument.text())
        let original = try OpenAPIDocument.operations(text)
        let createZone = try #require(original.first { $0.operationID == "createZone" })
        #expect(createZone.role == "admin")
        let loosened = original.map { $0.operationID == "createZone" ? OpenAPIDocument.Operation(method: $0.method, path: $0.path, operationID: $0.operationID, role: "viewer") : $0 }
        let tightened = original.map { $0.operationID == "listZones" ? OpenAPIDocument.Operation(method: $0.method, path: $0.path, operationID: $0.operationID, role: "admin") : $0 }
        let manager = harness.manager
        try await harness.test { client in
            let admin = try await client.token()
            let viewer = try await client.user("vera", role: .viewer, admin: admin)
            #expect(try await client.call(.post, "/api/v1/zones", token: viewer, json: #"{"name":"by-viewer"}"#).status == .forbidden)
            #expect(try await client.call(.get, "/api/v1/zones", token: viewer).status == .ok)
            // The same manager and database, served with the changed documents (while the database is open).
            try await Application(router: manager.router(operations: loosened)).test(.router) { loose in
                let answer = try await loose.call(.post, "/api/v1/zones", token: viewer, json: #"{"name":"by-viewer"}"#)
                #expect(answer.status == .created, "\(answer.body)")
            }
            try await Application(router: manager.router(operations: tightened)).test(.router) { tight in
                let answer = try await tight.call(.get, "/api/v1/zones", token: viewer)
                #expect(answer.status == .forbidden)
                #expect(answer.body.contains("listZones"))
            }
        }
        let createZoneRole = "operationId: createZone\n      summary: Create a zone.\n      x-klevr-role: admin\n"
        #expect(text.contains(createZoneRole))
        let broken = text.replacingOccurrences(of: createZoneRole, with: "operationId: createZone\n      summary: Create a zone.\n      x-klevr-role: everyone\n")
        #expect(throws: OpenAPIDocument.Failure.self) { try OpenAPIDocument.operations(broken) }
        let missing = text.replacingOccurrences(of: "      x-klevr-role: admin\n", with: "")
        #expect(throws: OpenAPIDocument.Failure.self) { try OpenAPIDocument.operations(missing) }
    }
}
