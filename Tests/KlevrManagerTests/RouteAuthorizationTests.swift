import Foundation
import HTTPTypes
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

    /// Reads paths, methods and `x-klevr-role` from the document by its fixed indentation.
    static func operations() throws -> [Operation] {
        let text = try #require(OpenAPIDocument.text())
        var operations: [Operation] = []
        var path: String?
        var method: HTTPRequest.Method?
        var inPaths = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "paths:" { inPaths = true; continue }
            if inPaths && !line.hasPrefix(" ") && !line.isEmpty { inPaths = false }
            guard inPaths else { continue }
            if line.hasPrefix("  /") && line.hasSuffix(":") && !line.hasPrefix("   ") {
                path = String(line.dropFirst(2).dropLast())
            } else if line.hasPrefix("    ") && !line.hasPrefix("     ") && line.hasSuffix(":") {
                method = HTTPRequest.Method(String(line.dropFirst(4).dropLast()).uppercased())
            } else if line.hasPrefix("      x-klevr-role: "), let path, let method {
                operations.append(Operation(method: method, path: path, role: String(line.dropFirst("      x-klevr-role: ".count))))
            }
        }
        return operations
    }

    static func concrete(_ path: String) -> String {
        path.replacingOccurrences(of: "{id}", with: Secrets.newID()).replacingOccurrences(of: "{zone}", with: "zone-a")
    }

    @Test func documentListsEveryOperationWithARole() throws {
        let operations = try Self.operations()
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
            let task = TaskCreateRequest(zone: "zone-a", target: TargetSpec(kind: .all), steps: [StepSpec(script: "true")])
            _ = try await client.decode(TaskView.self, .post, "/api/v1/tasks", token: operatorToken, body: task, expect: .created)
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
}
