import Foundation
import HTTPTypes
import KlevrAPI
import KlevrClient
import KlevrCore
@testable import KlevrManager
import KlevrStore
import OpenAPIRuntime
import Testing

/// Built-in command steps through the API: the registry, validation at task creation, the task's view
/// and the envelope an agent receives.
@Suite struct CommandStepTests {
    @Test func theRegistryIsServedToViewers() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            let viewer = try await client.user("watcher", role: .viewer, admin: admin)
            let list = try await client.api(token: viewer).listCommands().ok.body.json
            #expect(list.items.map(\.name) == BuiltinCommands.all.map(\.name.rawValue))
            let put = try #require(list.items.first { $0.name == "file.put" })
            let schema = try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(put.parameters))
            #expect(schema["required"] == ["content", "path"] || schema["required"] == ["path", "content"])
            #expect(schema["properties"]?["mode"]?["default"] == "0644")
            let anonymous = try await client.call(.get, "/api/v1/commands", token: nil)
            #expect(anonymous.status == .unauthorized)
        }
    }

    @Test func wrongCommandStepsAreRefusedNamingTheFieldAndStoreNothing() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            _ = try await client.zoneWithKey("zone-a", admin: admin)
            let cases: [(json: String, field: String)] = [
                (#"[{"command":"agent.reboot"}]"#, "steps[0].command"),
                (#"[{"script":"true"},{"command":"file.put","args":{"path":"relative","content":"aGk="}}]"#, "steps[1].args.path"),
                (#"[{"command":"file.put","args":{"path":"/tmp/x"}}]"#, "steps[0].args.content"),
                (#"[{"command":"agent.info","args":{"extra":1}}]"#, "steps[0].args.extra"),
                (#"[{"command":"agent.shutdown","args":{"mode":"soon"}}]"#, "steps[0].args.mode"),
                (#"[{"command":"agent.info","script":"true"}]"#, "steps[0]"),
                (#"[{"name":"nothing"}]"#, "steps[0]"),
                (#"[{"script":"true","args":{"a":1}}]"#, "steps[0].args"),
            ]
            for item in cases {
                let answer = try await client.call(
                    .post, "/api/v1/tasks", token: admin, json: #"{"zone":"zone-a","target":{"kind":"all"},"steps":\#(item.json)}"#)
                #expect(answer.status == .unprocessableContent, "\(item.json): \(answer.status) \(answer.body)")
                let fields = (try? ContractConformanceTests.problem(answer.body).errors?.map(\.field)) ?? nil
                #expect(fields?.contains(item.field) == true, "\(item.json): \(answer.body)")
            }
            // Recover steps are checked the same way.
            let recover = try await client.call(
                .post, "/api/v1/tasks", token: admin,
                json: #"{"zone":"zone-a","target":{"kind":"all"},"steps":[{"script":"false"}],"recover":[{"command":"file.get","args":{}}]}"#)
            #expect(recover.status == .unprocessableContent)
            #expect(try ContractConformanceTests.problem(recover.body).errors?.contains { $0.field == "recover[0].args.path" } == true, "\(recover.body)")
            let tasks = try await client.api(token: admin).listTasks(query: .init()).ok.body.json
            #expect(tasks.items.isEmpty)
        }
    }

    @Test func aCommandStepIsShownAndSignedForTheAgent() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            let key = try await client.zoneWithKey("zone-a", admin: admin).key
            let agent = try await client.enroll(zone: "zone-a", key: key)
            let api = try client.api(token: admin)
            let args = try JSONDecoder().decode(OpenAPIObjectContainer.self, from: Data(#"{"lines": 5}"#.utf8))
            let task = try await api.createTask(
                body: .json(
                    .init(
                        zone: "zone-a", target: .agent(agent.agentId),
                        steps: [.init(command: "agent.collect-logs", args: args), .init(script: "cat \"$KLEVR_PREVIOUS_RESULT_FILE\"")]))
            ).created.body.json
            #expect(task.name == "agent.collect-logs")
            #expect(task.steps.first?.command == "agent.collect-logs")
            #expect(task.steps.first?.script == nil)
            #expect(task.steps.first?.args == args)
            #expect(task.steps.last?.script != nil)

            // The envelope: the command with its args, a refusal script for old agents, both signatures.
            let managerKey = try #require(KlevrAPI.Keys.signing(agent.managerPublicKey))
            let envelope = try #require(
                try await SyncExchangeTests.sync(client, agent.credential, SyncRequest(wait: false, reports: [])).runs.first)
            #expect(envelope.steps.first?.command == "agent.collect-logs")
            #expect(envelope.steps.first?.script?.contains("upgrade") == true)
            #expect(envelope.stepsSignature != nil)
            try envelope.verify(managerKey: managerKey, agentID: agent.agentId, now: Clock.nowMillis())
            // Arguments changed on the way: the steps signature no longer verifies.
            var altered = envelope
            altered.steps[0].args = try JSONDecoder().decode(OpenAPIObjectContainer.self, from: Data(#"{"lines": 2000}"#.utf8))
            #expect(throws: RunEnvelope.Refusal.badSignature) { try altered.verify(managerKey: managerKey, agentID: agent.agentId, now: Clock.nowMillis()) }
            // The command stripped (what an agent that predates commands sees): the refusal script verifies alone.
            var legacy = envelope
            legacy.steps[0].command = nil
            legacy.steps[0].args = nil
            legacy.stepsSignature = nil
            try legacy.verify(managerKey: managerKey, agentID: agent.agentId, now: Clock.nowMillis())
            // The command kept without its signature: refused.
            var unsigned = envelope
            unsigned.stepsSignature = nil
            #expect(throws: RunEnvelope.Refusal.badSignature) { try unsigned.verify(managerKey: managerKey, agentID: agent.agentId, now: Clock.nowMillis()) }
        }
    }
}
