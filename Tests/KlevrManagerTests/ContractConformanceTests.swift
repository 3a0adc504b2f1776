import Foundation
import HTTPTypes
import HummingbirdTesting
import KlevrAPI
import KlevrCore
import KlevrManager
import Testing

/// The server answers what its OpenAPI document says (what `scripts/fuzz-api.sh` checks with
/// schemathesis): 405 with `Allow` for a method a path does not have, public routes that ignore
/// credentials, lengths counted in code points as JSON Schema counts them, and only the spellings the
/// document's patterns admit.
@Suite struct ContractConformanceTests {
    static func problem(_ body: String) throws -> Components.Schemas.Problem {
        try JSONDecoder().decode(Components.Schemas.Problem.self, from: Data(body.utf8))
    }

    @Test func theDocumentsMethodsAreReadPerPath() throws {
        let methods = OpenAPIDocument.methodsByPath(try #require(OpenAPIDocument.text()))
        #expect(methods["/api/v1/zones"] == ["GET", "POST"])
        #expect(methods["/api/v1/zones/{zone}"] == ["GET", "DELETE"])
        #expect(methods["/healthz"] == ["GET"])
        #expect(methods.count >= 30)
    }

    @Test func aMethodAPathDoesNotHaveIs405WithAllow() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            let cases: [(HTTPRequest.Method, String, String)] = [
                (.trace, "/healthz", "GET"),
                (.delete, "/api/v1/zones", "GET, POST"),
                (.put, "/api/v1/zones/zone-a", "DELETE, GET"),
                (.get, "/api/v1/runs/\(Secrets.newID())/cancel", "POST"),
                (.patch, "/api/v1/agent/sync", "POST"),
            ]
            for (method, uri, allow) in cases {
                for token in [admin, nil] {
                    let answer = try await client.call(method, uri, token: token)
                    #expect(answer.status == .methodNotAllowed, "\(method) \(uri): \(answer.status) \(answer.body)")
                    #expect(answer.headers[.allow] == allow, "\(method) \(uri)")
                    #expect(answer.headers[.contentType] == "application/problem+json")
                    #expect(try Self.problem(answer.body).status == 405)
                }
            }
            // A path that is not in the document stays a 404, and a documented method still works.
            #expect(try await client.call(.get, "/api/v1/no-such-route", token: admin).status == .notFound)
            #expect(try await client.call(.delete, "/api/v1/no-such-route", token: admin).status == .notFound)
            #expect(try await client.call(.get, "/api/v1/zones", token: admin).status == .ok)
        }
    }

    @Test func publicRoutesIgnoreCredentials() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let stale: [HTTPFields] = [
                [.authorization: "Bearer klt_" + Secrets.randomToken(bytes: 32)],
                [.authorization: "Bearer kla_" + Secrets.randomToken(bytes: 32)],
                [.authorization: "Basic YWRtaW46YWRtaW4="],
                [.cookie: "klevr_session=expired"],
            ]
            for headers in stale {
                #expect(try await client.call(.get, "/healthz", headers: headers).status == .ok)
                #expect(try await client.call(.get, "/readyz", headers: headers).status == .ok)
                #expect(try await client.call(.get, "/api/v1/agent/hello", headers: headers).status == .ok)
                let login = try await client.call(
                    .post, "/api/v1/auth/login", json: #"{"username":"admin","password":"\#(TestManager.adminPassword)"}"#, headers: headers)
                #expect(login.status == .ok, "\(headers): \(login.body)")
                // Other routes still refuse the same credentials.
                #expect(try await client.call(.get, "/api/v1/zones", headers: headers).status == .unauthorized)
            }
        }
    }

    @Test func lengthsAreCountedInCodePoints() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            // "e" + combining acute: one character, two code points.
            let accent = "e\u{301}"
            let api = try client.api(token: admin)
            let tooLong = try await api.createZone(body: .json(.init(name: "z1", description: String(repeating: accent, count: 501))))
            #expect(try tooLong.unprocessableContent.body.applicationProblemJson.status == 422, "\(tooLong)")
            let wide = try await api.createZone(body: .json(.init(name: "z2", description: String(repeating: "😀", count: 1000))))
            #expect(try wide.created.body.json.name == "z2", "\(wide)")

            let tokenName = try await client.call(
                .post, "/api/v1/tokens", token: admin, json: #"{"name":"\#(String(repeating: accent, count: 51))"}"#)
            #expect(tokenName.status == .unprocessableContent)
            #expect(try await client.call(.post, "/api/v1/tokens", token: admin, json: #"{"name":""}"#).status == .unprocessableContent)

            let stepName = try await client.call(
                .post, "/api/v1/tasks", token: admin,
                json: #"{"zone":"z2","target":{"kind":"all"},"steps":[{"script":"true","name":"\#(String(repeating: accent, count: 101))"}]}"#)
            #expect(stepName.status == .unprocessableContent)
            #expect(try Self.problem(stepName.body).errors?.contains { $0.field == "steps[0].name" } == true)
        }
    }

    @Test func passwordsAre12To72CodePointsAndEveryOneCounts() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            let api = try client.api(token: admin)
            func create(_ name: String, _ password: String) async throws -> HTTPResponse.Status {
                try await api.createUser(body: .json(.init(username: name, password: password, role: .viewer))).status
            }
            #expect(try await create("short", String(repeating: "a", count: 11)) == .unprocessableContent)
            #expect(try await create("long", String(repeating: "a", count: 73)) == .unprocessableContent)
            #expect(try await create("ascii", String(repeating: "a", count: 72)) == .created)
            // 72 code points, 126 bytes: beyond bcrypt's 72 bytes, and the tail still counts.
            let head = String(repeating: "😀", count: 18)
            let password = head + String(repeating: "a", count: 54)
            #expect(try await create("wide", password) == .created)
            func login(_ password: String) async throws -> HTTPResponse.Status {
                try await client.api().login(body: .json(.init(username: "wide", password: password))).status
            }
            #expect(try await login(password) == .ok)
            #expect(try await login(head + String(repeating: "b", count: 54)) == .unauthorized)
        }
    }

    @Test func scriptsParametersAndReferencesAnswerAsDocumented() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            _ = try await client.zoneWithKey("zone-a", admin: admin)
            let cases: [(json: String, status: HTTPResponse.Status, field: String?)] = [
                (#"{"zone":"zone-a","target":{"kind":"all"},"steps":[{"script":"\u3000\n\t"}]}"#, .unprocessableContent, "steps[0].script"),
                (#"{"zone":"zone-a","target":{"kind":"all"},"steps":[{"script":"\ufeff"}]}"#, .unprocessableContent, "steps[0].script"),
                (#"{"zone":"zone-a","target":{"kind":"all"},"steps":[{"script":"true\u0000"}]}"#, .unprocessableContent, "steps[0].script"),
                (#"{"zone":"zone-a","target":{"kind":"all"},"steps":[{"script":"true"}],"params":{"P":"\u0000\u0301"}}"#, .unprocessableContent, "params.P"),
                (#"{"zone":"zone-a","target":{"kind":"agent","agentId":"\#(Secrets.newID())"},"steps":[{"script":"true"}]}"#, .notFound, nil),
                (#"{"zone":"zone-b","target":{"kind":"all"},"steps":[{"script":"true"}]}"#, .notFound, nil),
            ]
            for item in cases {
                let answer = try await client.call(.post, "/api/v1/tasks", token: admin, json: item.json)
                #expect(answer.status == item.status, "\(item.json): \(answer.status) \(answer.body)")
                if let field = item.field {
                    #expect(try Self.problem(answer.body).errors?.contains { $0.field == field } == true, "\(item.json): \(answer.body)")
                }
            }
            let tasks = try await client.api(token: admin).listTasks().ok.body.json
            #expect(tasks.items.isEmpty)
        }
    }

    @Test func queriesAcceptOnlyTheDocumentedSpellings() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            _ = try await client.zoneWithKey("zone-a", admin: admin)
            let id = Secrets.newID()
            let cases: [(HTTPRequest.Method, String, HTTPResponse.Status)] = [
                (.get, "/api/v1/runs?cursor=5_\(id)", .ok),
                (.get, "/api/v1/runs?cursor=%2B5_\(id)", .unprocessableContent),
                (.get, "/api/v1/runs?cursor=05_\(id)", .unprocessableContent),
                (.get, "/api/v1/runs?cursor=9999999999999999999_\(id)", .unprocessableContent),
                (.get, "/api/v1/events?cursor=12", .ok),
                (.get, "/api/v1/events?cursor=012", .unprocessableContent),
                (.get, "/api/v1/events?follow=yes", .unprocessableContent),
                (.get, "/api/v1/events?follow=false", .ok),
                (.delete, "/api/v1/zones/zone-a?force=maybe", .unprocessableContent),
                (.get, "/api/v1/zones/zone-a", .ok),
            ]
            for (method, uri, status) in cases {
                let answer = try await client.call(method, uri, token: admin)
                #expect(answer.status == status, "\(method) \(uri): \(answer.status) \(answer.body)")
            }
        }
    }

    @Test func aSealedEnrollmentThatDoesNotOpenIsRefusedAs401() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let answer = try await client.call(.post, "/api/v1/agent/enroll-sealed", json: #"{"box":{"epk":"","ct":""}}"#)
            #expect(answer.status == .unauthorized, "\(answer.body)")
            #expect(try Self.problem(answer.body)._type.hasSuffix("/enroll-refused"))
        }
    }
}

extension ContractConformanceTests {
    /// The pattern of `kind` on `GET /api/v1/events` admits every event kind and family the server
    /// knows (alone, with `.*` and in lists) and nothing else: it has to grow with `EventKind`.
    @Test func theEventKindPatternMatchesTheServersKinds() throws {
        let text = try #require(OpenAPIDocument.text())
        let line = try #require(text.split(separator: "\n").first { $0.contains("{ name: kind, in: query") })
        let quoted = try #require(line.components(separatedBy: "pattern: \"").last?.components(separatedBy: "\" }").first)
        let pattern = quoted.replacingOccurrences(of: "\\\\", with: "\\")
        let regex = try NSRegularExpression(pattern: pattern)
        func admits(_ value: String) -> Bool {
            regex.firstMatch(in: value, range: NSRange(value.startIndex..., in: value)) != nil
        }
        let families = Set(EventKind.allCases.map { String($0.rawValue.split(separator: ".")[0]) })
        for name in EventKind.allCases.map(\.rawValue) + families.sorted() {
            #expect(admits(name), "\(name)")
            #expect(admits(name + ".*"), "\(name).*")
            #expect(admits("zone," + name), "zone,\(name)")
        }
        for wrong in ["run.nope", "runs", "run, task", "RUN", "run.started.x"] {
            #expect(!admits(wrong), "\(wrong)")
        }
    }
}
