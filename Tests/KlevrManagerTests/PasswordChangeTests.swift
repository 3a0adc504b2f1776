import Foundation
import HTTPTypes
import HummingbirdTesting
import KlevrAPI
import KlevrCore
import KlevrManager
import KlevrStore
import Logging
import Testing

/// A session opened by a test: its cookie and CSRF headers and the login answer.
struct TestSession {
    var headers: HTTPFields
    var answer: Components.Schemas.LoginResponse
}

extension TestClientProtocol {
    /// Logs in through the generated client and returns the session's headers (cookie and CSRF) for later calls.
    func session(_ username: String, _ password: String, sourceLocation: SourceLocation = #_sourceLocation) async throws -> TestSession {
        let login = try await api().login(body: .json(.init(username: username, password: password))).ok
        let answer = try login.body.json
        let cookie = try #require(login.headers.setCookie?.split(separator: ";").first.map(String.init), sourceLocation: sourceLocation)
        var headers: HTTPFields = [.cookie: cookie]
        headers[try #require(HTTPField.Name("X-Klevr-CSRF"), sourceLocation: sourceLocation)] = answer.csrfToken
        return TestSession(headers: headers, answer: answer)
    }

    /// Changes the caller's password through a session or a token, with the generated client.
    func changePassword(
        _ current: String, to new: String, session: TestSession? = nil, token: String? = nil
    ) async throws -> Operations.ChangePassword.Output {
        let caller = try session.map { try api(headers: $0.headers) } ?? api(token: token)
        return try await caller.changePassword(body: .json(.init(currentPassword: current, newPassword: new)))
    }
}

/// Password changes, and the generated first-admin password that must be changed before anything else.
@Suite struct PasswordChangeTests {
    /// A manager whose first admin got a generated password (the one `klevr manager` prints).
    static func managerWithGeneratedAdmin(mustChange: Bool = true) async throws -> (TestManager, String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("klevr-manager-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let logs = LogCapture()
        let config = ManagerConfig(
            host: "127.0.0.1", port: 0, database: .sqlite(path: directory.appendingPathComponent("klevr.db").path), bcryptCost: 4,
            generatedAdminMustChangePassword: mustChange)
        let (manager, generated) = try await Manager.bootstrap(config: config, logger: logs.logger())
        return (TestManager(manager: manager, logs: logs), try #require(generated))
    }

    @Test func aGeneratedAdminPasswordMustBeChangedBeforeAnythingElse() async throws {
        let (harness, generated) = try await Self.managerWithGeneratedAdmin()
        try await harness.test { client in
            let session = try await client.session("admin", generated)
            #expect(session.answer.passwordChangeRequired)
            #expect(session.answer.user.passwordChangeRequired)

            // Everything but the password change, /me and logout says what to do.
            for (method, path, json) in [
                (HTTPRequest.Method.get, "/api/v1/zones", nil as String?), (.post, "/api/v1/tokens", #"{"name":"x"}"#), (.get, "/api/v1/users", nil),
                (.get, "/api/v1/openapi.yaml", nil),
            ] {
                let refused = try await client.call(method, path, json: json, headers: session.headers)
                #expect(refused.status == .forbidden, "\(method) \(path)")
                let problem = try JSONDecoder().decode(Components.Schemas.Problem.self, from: Data(refused.body.utf8))
                #expect(problem._type == "https://klevr.dev/problems/password-change-required")
                #expect(problem.detail.contains("POST /api/v1/me/password") && problem.detail.contains("klevr user passwd"))
            }
            #expect(try await client.call(.get, "/api/v1/me", headers: session.headers).status == .ok)

            // Bad changes change nothing.
            #expect(try await client.changePassword("wrong-password-1", to: "a-new-good-password", session: session).status == .forbidden)
            #expect(try await client.changePassword(generated, to: generated, session: session).status == .unprocessableContent)
            #expect(try await client.changePassword(generated, to: "short", session: session).status == .unprocessableContent)
            #expect(try await client.call(.get, "/api/v1/zones", headers: session.headers).status == .forbidden)

            let changed = try await client.changePassword(generated, to: "a-new-good-password", session: session)
            #expect(changed.status == .noContent, "\(changed)")
            // The session that made the change goes on, unrestricted.
            #expect(try await client.call(.get, "/api/v1/zones", headers: session.headers).status == .ok)
            let me = try await client.api(headers: session.headers).me().ok.body.json
            #expect(!me.passwordChangeRequired)
            #expect(me.passwordChangedAt != nil)
            #expect(try await client.api().login(body: .json(.init(username: "admin", password: generated))).status == .unauthorized)
            #expect(try await !client.session("admin", "a-new-good-password").answer.passwordChangeRequired)
        }
        #expect(!harness.logs.text.contains(generated))
        #expect(!harness.logs.text.contains("a-new-good-password"))
    }

    @Test func everyOperationOfTheDocumentButFourRefusesAUserWhoseGeneratedPasswordIsUnchanged() async throws {
        let (harness, generated) = try await Self.managerWithGeneratedAdmin()
        // The console reads its session (and CSRF token) to show the password change.
        let exempt: Set<String> = ["POST /api/v1/me/password", "POST /api/v1/auth/logout", "GET /api/v1/me", "GET /api/v1/auth/session"]
        let operations = try RouteAuthorizationTests.operations().filter { $0.role != "public" }
        #expect(operations.count >= 30)
        try await harness.test { client in
            let session = try await client.session("admin", generated)
            for operation in operations where !exempt.contains("\(operation.method) \(operation.path)") {
                let answer = try await client.call(
                    operation.method, RouteAuthorizationTests.concrete(operation.path), json: operation.method == .get ? nil : "{}",
                    headers: session.headers)
                #expect(answer.status == .forbidden && answer.body.contains("password-change-required"), "\(operation): \(answer.status)")
            }
            #expect(try await client.call(.get, "/api/v1/me", headers: session.headers).status == .ok)
            let current = try await client.call(.get, "/api/v1/auth/session", headers: session.headers)
            #expect(current.status == .ok, "\(current.body)")
            let answer = try JSONDecoder().decode(Components.Schemas.LoginResponse.self, from: Data(current.body.utf8))
            #expect(answer.passwordChangeRequired)
            #expect(try await client.call(.post, "/api/v1/auth/logout", headers: session.headers).status == .noContent)
        }
    }

    @Test func theDemoAdminOfKlevrUpIsExempt() async throws {
        let (harness, generated) = try await Self.managerWithGeneratedAdmin(mustChange: false)
        try await harness.test { client in
            let session = try await client.session("admin", generated)
            #expect(!session.answer.passwordChangeRequired)
            #expect(try await client.call(.get, "/api/v1/zones", headers: session.headers).status == .ok)
        }
    }

    @Test func aPasswordChangeEndsOtherSessionsAndEveryToken() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            _ = try await client.user("pat", role: .operator_, admin: admin)
            let patToken = try await client.token("pat", "password-of-pat")
            let first = try await client.session("pat", "password-of-pat")
            let second = try await client.session("pat", "password-of-pat")

            let changed = try await client.changePassword("password-of-pat", to: "second-password-of-pat", session: first)
            #expect(changed.status == .noContent, "\(changed)")
            #expect(try await client.call(.get, "/api/v1/zones", headers: first.headers).status == .ok)
            #expect(try await client.call(.get, "/api/v1/zones", headers: second.headers).status == .unauthorized)
            #expect(try await client.call(.get, "/api/v1/zones", token: patToken).status == .unauthorized)
            // Another user's credentials are untouched.
            #expect(try await client.call(.get, "/api/v1/zones", token: admin).status == .ok)

            // A change made with a token ends that token too.
            let newToken = try await client.token("pat", "second-password-of-pat")
            #expect(try await client.changePassword("second-password-of-pat", to: "third-password-of-pat", token: newToken).status == .noContent)
            #expect(try await client.call(.get, "/api/v1/me", token: newToken).status == .unauthorized)
            #expect(try await client.call(.get, "/api/v1/zones", headers: first.headers).status == .unauthorized)
        }
    }

    @Test func passwordRulesCountCodePointsAndBytes() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            let api = try client.api(token: admin)
            func create(_ name: String, _ password: String) async throws -> HTTPResponse.Status {
                try await api.createUser(body: .json(.init(username: name, password: password, role: .viewer))).status
            }
            #expect(try await create("u1", String(repeating: "a", count: 11)) == .unprocessableContent)
            #expect(try await create("u2", String(repeating: "a", count: 12)) == .created)
            #expect(try await create("u3", String(repeating: "a", count: 72)) == .created)
            #expect(try await create("u4", String(repeating: "a", count: 73)) == .unprocessableContent)
            // Twelve code points of two bytes each: long enough; 72 of them (144 bytes, over bcrypt's 72) are
            // accepted and hashed whole; 73 are too many.
            #expect(try await create("u5", String(repeating: "é", count: 12)) == .created)
            #expect(try await create("u6", String(repeating: "é", count: 72)) == .created)
            #expect(try await create("u8", String(repeating: "é", count: 73)) == .unprocessableContent)
            #expect(try await create("u7", "twelve-chars\u{0}-and-a-nul") == .unprocessableContent)
            let users = try await api.listUsers().ok.body.json
            #expect(users.items.map(\.username).sorted() == ["admin", "u2", "u3", "u5", "u6"])
        }
    }
}
