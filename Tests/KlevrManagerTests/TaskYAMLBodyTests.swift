import Foundation
import HTTPTypes
import HummingbirdTesting
import KlevrAPI
import KlevrManager
import NIOCore
import Testing

/// `POST /api/v1/tasks` with `Content-Type: application/yaml`: the same request model as JSON; a
/// misspelt field or text that is not YAML is a 4xx naming the problem, and nothing is stored.
@Suite struct TaskYAMLBodyTests {
    static func postYAML(_ client: any TestClientProtocol, _ yaml: String, token: String) async throws -> (status: HTTPResponse.Status, body: String) {
        var headers: HTTPFields = [.authorization: "Bearer \(token)", .contentType: "application/yaml"]
        headers[.accept] = "application/json"
        return try await client.execute(uri: "/api/v1/tasks", method: .post, headers: headers, body: ByteBuffer(string: yaml)) { response in
            (response.status, String(buffer: response.body))
        }
    }

    static let json = #"""
        {"name": "nightly", "zone": "zone-a", "target": {"kind": "selector", "selector": "env=prod,role!=db"},
         "steps": [{"name": "hello", "script": "echo \"$KLEVR_PARAM_WHO\"\nexit 0\n", "timeoutSeconds": 60},
                   {"command": "host.facts", "args": {}}],
         "params": {"WHO": "world", "COUNT": "3"}, "timeoutSeconds": 120, "deliverWithinSeconds": 600,
         "schedule": {"cron": "0 3 * * mon-fri", "timeZone": "Europe/Berlin", "maxOccurrences": 10, "overlap": "queue", "catchUp": "latest"},
         "rollout": {"maxConcurrency": "2", "maxErrors": "10%"},
         "recover": [{"script": "echo recovering"}]}
        """#

    static let yaml = """
        # The same task as `json`, in YAML.
        name: nightly
        zone: zone-a
        target:
          kind: selector
          selector: env=prod,role!=db
        steps:
          - name: hello
            script: |
              echo "$KLEVR_PARAM_WHO"
              exit 0
            timeoutSeconds: 60
          - command: host.facts
            args: {}
        params:
          WHO: world
          COUNT: "3"
        timeoutSeconds: 120
        deliverWithinSeconds: 600
        schedule: { cron: "0 3 * * mon-fri", timeZone: Europe/Berlin, maxOccurrences: 10, overlap: queue, catchUp: latest }
        rollout: { maxConcurrency: "2", maxErrors: "10%" }
        recover:
          - script: echo recovering
        """

    /// What two creations of the same request have in common (not the id, time or fire times).
    static func definition(_ task: Components.Schemas.Task) -> Components.Schemas.Task {
        var task = task
        task.id = ""
        task.createdAt = 0
        task.runs = []
        task.schedule?.nextFireTimes = []
        return task
    }

    @Test func yamlCreatesTheSameTaskAsJSON() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            _ = try await client.zoneWithKey("zone-a", admin: admin)
            let jsonAnswer = try await client.call(.post, "/api/v1/tasks", token: admin, json: Self.json)
            #expect(jsonAnswer.status == .created, "\(jsonAnswer.body)")
            let yamlAnswer = try await Self.postYAML(client, Self.yaml, token: admin)
            #expect(yamlAnswer.status == .created, "\(yamlAnswer.body)")
            let a = try JSONDecoder().decode(Components.Schemas.Task.self, from: Data(jsonAnswer.body.utf8))
            let b = try JSONDecoder().decode(Components.Schemas.Task.self, from: Data(yamlAnswer.body.utf8))
            #expect(a.id != b.id)
            #expect(Self.definition(a) == Self.definition(b))
            #expect(b.params.additionalProperties == ["WHO": "world", "COUNT": "3"])
            #expect(b.steps.first?.script == "echo \"$KLEVR_PARAM_WHO\"\nexit 0\n")
            #expect(b.schedule?.cron == "0 3 * * mon-fri")
            #expect(b.schedule?.nextFireTimes.isEmpty == false)
            // The stored task reads back the same.
            let stored = try await client.api(token: admin).getTask(path: .init(id: b.id)).ok.body.json
            #expect(Self.definition(stored) == Self.definition(b))
        }
    }

    /// The field list that refuses unknown fields (also null ones) is the request type's own.
    @Test func theKnownFieldsAreTheRequestsFields() throws {
        let full = #"""
            {"name": "n", "zone": "z", "target": {"kind": "all"}, "steps": [{"script": "true"}], "params": {"A": "b"}, "timeoutSeconds": 1,
             "runAt": 1, "deliverWithinSeconds": 1, "schedule": {"cron": "* * * * *"}, "rollout": {"maxConcurrency": "1"},
             "credentials": ["C"], "recover": [{"script": "true"}], "callbackUrl": "http://127.0.0.1:9/x"}
            """#
        let request = try JSONDecoder().decode(Components.Schemas.TaskCreateRequest.self, from: Data(full.utf8))
        let encoded = try #require(try JSONSerialization.jsonObject(with: try JSONEncoder().encode(request)) as? [String: Any])
        #expect(Set(encoded.keys) == TaskYAML.fields)
        // A null known field is fine; an unknown one is refused, null or not.
        #expect(throws: Never.self) { try TaskYAML.request(from: "zone: z\ntarget: { kind: all }\nsteps: [{ script: 'true' }]\nname: null\n") }
        #expect(throws: TaskYAML.Failure.self) { try TaskYAML.request(from: "zone: z\ntarget: { kind: all }\nsteps: [{ script: 'true' }]\nnmae: null\n") }
    }

    @Test func aMisspeltFieldOrBadYAMLIsRefusedAndStoresNothing() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            _ = try await client.zoneWithKey("zone-a", admin: admin)
            let cases: [(yaml: String, status: HTTPResponse.Status, field: String?, detail: String)] = [
                // A misspelt field (timeout_seconds for timeoutSeconds) is named.
                ("zone: zone-a\ntarget: { kind: all }\nsteps: [{ script: 'true' }]\ntimeout_seconds: 5\n", .unprocessableContent, "timeout_seconds", "timeout_seconds"),
                // Not YAML.
                ("zone: zone-a\nsteps: [unclosed\n", .badRequest, nil, "not valid YAML"),
                ("zone: zone-a\n  target: : :\n\t- x", .badRequest, nil, "not valid YAML"),
                // YAML, but not a task.
                ("- zone: zone-a\n", .unprocessableContent, "body", "mapping"),
                ("just text", .unprocessableContent, "body", "mapping"),
                // A value of the wrong type or a missing field, named as for JSON.
                ("zone: zone-a\ntarget: { kind: all }\nsteps: [{ script: [1, 2] }]\n", .unprocessableContent, "steps[0].script", "steps[0].script"),
                ("zone: zone-a\ntarget: { kind: all }\n", .unprocessableContent, "steps", "steps"),
                // Valid YAML whose values the manager refuses, like JSON's.
                ("zone: zone-a\ntarget: { kind: all }\nsteps: [{ script: 'true' }]\ntimeoutSeconds: 0\n", .unprocessableContent, "timeoutSeconds", "timeoutSeconds"),
                ("zone: zone-a\ntarget: { kind: all }\nsteps: [{ script: 'true' }]\nschedule: { cron: 'not a cron' }\n", .unprocessableContent, "schedule.cron", "schedule.cron"),
            ]
            for item in cases {
                let answer = try await Self.postYAML(client, item.yaml, token: admin)
                #expect(answer.status == item.status, "\(item.yaml): \(answer.status) \(answer.body)")
                let problem = try JSONDecoder().decode(Components.Schemas.Problem.self, from: Data(answer.body.utf8))
                #expect(problem.detail.contains(item.detail), "\(item.yaml): \(answer.body)")
                if let field = item.field {
                    #expect(problem.errors?.contains { $0.field == field } == true, "\(item.yaml): \(answer.body)")
                }
            }
            // Aliases that repeat what they name, nested: a few hundred bytes that would expand to 10^20
            // values. Refused at once (the manager stays up), as is nesting deeper than a task has.
            var laughs = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
            for level in 1...20 { laughs += "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]\n" }
            laughs += "zone: zone-a\ntarget: { kind: all }\nsteps: [{ script: 'true' }]\nname: *a20\n"
            let bomb = try await Self.postYAML(client, laughs, token: admin)
            #expect(bomb.status == .unprocessableContent, "\(bomb.body)")
            #expect(bomb.body.contains("aliases"))
            let deep = "zone: zone-a\ntarget: { kind: all }\nsteps: [{ script: 'true' }]\nname: " + String(repeating: "[", count: 5_000) + String(repeating: "]", count: 5_000) + "\n"
            let nested = try await Self.postYAML(client, deep, token: admin)
            #expect(nested.status == .unprocessableContent, "\(nested.status) \(nested.body.prefix(300))")
            // Parsed (under the bracket limit), but deeper than a task can be.
            let deeper = "zone: zone-a\ntarget: { kind: all }\nsteps: [{ script: 'true' }]\nname: " + String(repeating: "[", count: 500) + String(repeating: "]", count: 500) + "\n"
            #expect(try await Self.postYAML(client, deeper, token: admin).status == .unprocessableContent)
            #expect(try await client.call(.get, "/readyz").status == .ok)
            // Larger than the API's body limit: a 413.
            let huge = "zone: zone-a\ntarget: { kind: all }\nsteps: [{ script: '" + String(repeating: "x", count: 2 << 20) + "' }]\n"
            #expect(try await Self.postYAML(client, huge, token: admin).status == .contentTooLarge)
            // Nothing was created by any of them.
            let tasks = try await client.api(token: admin).listTasks().ok.body.json
            #expect(tasks.items.isEmpty)
        }
    }
}
