import Foundation
import HTTPTypes
import HummingbirdTesting
import KlevrAPI
import KlevrCore
import KlevrManager
import Testing

/// Malformed JSON, wrong types, oversized bodies and bad ids get a problem document with a 4xx status,
/// never a 5xx, and change nothing.
@Suite struct BadInputTests {
    static func problem(_ body: String) throws -> Components.Schemas.Problem {
        try JSONDecoder().decode(Components.Schemas.Problem.self, from: Data(body.utf8))
    }

    @Test func malformedAndMistypedBodies() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            _ = try await client.zoneWithKey("zone-a", admin: admin)
            let cases: [(uri: String, json: String, status: HTTPResponse.Status, field: String?)] = [
                ("/api/v1/zones", "{", .badRequest, nil),
                ("/api/v1/zones", "[]", .unprocessableContent, nil),
                ("/api/v1/zones", "", .badRequest, nil),
                ("/api/v1/zones", #"{"name": 5}"#, .unprocessableContent, "name"),
                ("/api/v1/zones", #"{"name": "Bad Name"}"#, .unprocessableContent, "name"),
                ("/api/v1/zones", #"{"description": "x"}"#, .unprocessableContent, "name"),
                ("/api/v1/tasks", #"{"zone":"zone-a","target":{"kind":"all"},"steps":[{"script":5}]}"#, .unprocessableContent, "steps[0].script"),
                ("/api/v1/tasks", #"{"zone":"zone-a","target":{"kind":"everywhere"},"steps":[{"script":"true"}]}"#, .unprocessableContent, "target.kind"),
                ("/api/v1/tasks", #"{"zone":"zone-a","target":{"kind":"all"},"steps":[]}"#, .unprocessableContent, "steps"),
                ("/api/v1/tasks", #"{"zone":"zone-a","target":{"kind":"all"},"steps":[{"script":"true"}],"params":{"1x":"y"}}"#, .unprocessableContent, "params.1x"),
                ("/api/v1/tasks", #"{"zone":"zone-a","target":{"kind":"all"},"steps":[{"script":"true"}],"timeoutSeconds":-1}"#, .unprocessableContent, "timeoutSeconds"),
                ("/api/v1/tasks", #"{"zone":"nowhere","target":{"kind":"all"},"steps":[{"script":"true"}]}"#, .notFound, nil),
                ("/api/v1/tasks", #"{"zone":"Not A Zone","target":{"kind":"all"},"steps":[{"script":"true"}]}"#, .unprocessableContent, "zone"),
                ("/api/v1/tasks", #"{"zone":"zone-a","target":{"kind":"agent","agentId":"nope"},"steps":[{"script":"true"}]}"#, .unprocessableContent, "target.agentId"),
                ("/api/v1/zones/zone-a/enroll-keys", #"{"expiresInSeconds":"soon"}"#, .unprocessableContent, "expiresInSeconds"),
                ("/api/v1/users", #"{"username":"u","password":"short","role":"viewer"}"#, .unprocessableContent, "password"),
                ("/api/v1/users", #"{"username":"u","password":"long-enough-password","role":"god"}"#, .unprocessableContent, "role"),
            ]
            for item in cases {
                let answer = try await client.call(.post, item.uri, token: admin, json: item.json)
                #expect(answer.status == item.status, "\(item.uri) \(item.json): \(answer.status) \(answer.body)")
                #expect(answer.headers[.contentType] == "application/problem+json")
                let problem = try Self.problem(answer.body)
                #expect(problem.status == Int(item.status.code))
                if let field = item.field {
                    #expect(problem.errors?.contains { $0.field == field } == true, "\(item.json): \(answer.body)")
                }
            }
            // Nothing was created by any of them.
            let zones = try await client.api(token: admin).listZones().ok.body.json
            #expect(zones.items.map(\.name) == ["zone-a"])
            let tasks = try await client.api(token: admin).listTasks().ok.body.json
            #expect(tasks.items.isEmpty)
        }
    }

    @Test func oversizedBodiesAre413() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            let huge = #"{"name":"x","description":""# + String(repeating: "a", count: 2 << 20) + #""}"#
            let answer = try await client.call(.post, "/api/v1/zones", token: admin, json: huge)
            #expect(answer.status == .contentTooLarge)
            #expect(try Self.problem(answer.body).status == 413)
        }
    }

    @Test func badIdsAndQueries() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            let cases: [(HTTPRequest.Method, String, HTTPResponse.Status)] = [
                (.get, "/api/v1/runs/not-an-id", .badRequest),
                (.get, "/api/v1/runs/\(Secrets.newID())", .notFound),
                (.get, "/api/v1/runs/\(Secrets.newID())/logs", .notFound),
                (.post, "/api/v1/runs/\(Secrets.newID())/cancel", .notFound),
                (.get, "/api/v1/tasks/%00", .badRequest),
                (.get, "/api/v1/agents/../../etc/passwd", .notFound),
                (.get, "/api/v1/runs?limit=0", .unprocessableContent),
                (.get, "/api/v1/runs?limit=abc", .unprocessableContent),
                (.get, "/api/v1/runs?status=exploded", .unprocessableContent),
                (.get, "/api/v1/runs?cursor=garbage", .unprocessableContent),
                (.get, "/api/v1/runs/\(Secrets.newID())/logs?after=-1", .notFound),
                (.get, "/api/v1/zones/NOT_A_ZONE", .notFound),
                (.delete, "/api/v1/zones/zone-b/enroll-keys/\(Secrets.newID())", .notFound),
                (.get, "/api/v1/no-such-route", .notFound),
            ]
            for (method, uri, status) in cases {
                let answer = try await client.call(method, uri, token: admin)
                #expect(answer.status == status, "\(method) \(uri): \(answer.status) \(answer.body)")
                #expect(answer.status.code < 500)
                #expect(answer.headers[.contentType] == "application/problem+json", "\(uri)")
            }
        }
    }
}
