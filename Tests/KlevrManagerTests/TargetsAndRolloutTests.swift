import Crypto
import Foundation
import HTTPTypes
import HummingbirdTesting
import KlevrAPI
import KlevrClient
import KlevrCore
@testable import KlevrManager
import KlevrStore
import Testing

/// Labels, selector targets and rollout limits through the API.
@Suite struct TargetsAndRolloutTests {
    /// Enrolls an agent that reports these labels (`--labels`).
    static func enroll(_ client: some TestClientProtocol, zone: String, key: String, labels: [String: String]) async throws -> EnrollResponse {
        try await client.decode(
            EnrollResponse.self, .post, "/api/v1/agent/enroll", token: nil,
            body: try EnrollRequest.proving(
                zone: zone, enrollKey: key, key: .init(), sealKey: Curve25519.KeyAgreement.PrivateKey().publicKey,
                facts: HostFacts(hostname: "h", os: "linux", version: "t", addresses: [], labels: .init(additionalProperties: labels)),
                time: Clock.nowMillis()),
            expect: .created)
    }

    @Test func aSelectorPicksLabelledAgentsInTheZoneOrAcrossZones() async throws {
        let harness = try await TestManager.make()
        let store = harness.manager.store
        try await harness.test { client in
            let admin = try await client.token()
            let keyA = try await client.zoneWithKey("zone-a", admin: admin).key
            let keyB = try await client.zoneWithKey("zone-b", admin: admin).key
            let webA = try await Self.enroll(client, zone: "zone-a", key: keyA, labels: ["env": "prod", "role": "web"])
            let dbA = try await Self.enroll(client, zone: "zone-a", key: keyA, labels: ["env": "prod", "role": "db"])
            let webB = try await Self.enroll(client, zone: "zone-b", key: keyB, labels: ["env": "prod", "role": "web"])
            let stagingB = try await Self.enroll(client, zone: "zone-b", key: keyB, labels: ["env": "staging"])
            let api = try client.api(token: admin)
            #expect(try await api.getAgent(path: .init(id: webA.agentId)).ok.body.json.labels.additionalProperties == ["env": "prod", "role": "web"])

            // The agents list filters by selector.
            let listed = try await api.listAgents(query: .init(selector: "env=prod,role!=db")).ok.body.json.items.map(\.id)
            #expect(Set(listed) == [webA.agentId, webB.agentId])

            // Within the task's zone, then across zones; each run is of its agent's zone.
            let inZone = try await api.createTask(
                body: .json(.init(zone: "zone-a", target: .matching("env=prod,role!=db", allZones: false), steps: [.init(script: "true")]))
            ).created.body.json
            #expect(inZone.runs.map(\.agentId) == [webA.agentId])
            #expect(inZone.target.selectorText == "env=prod,role!=db")
            let across = try await api.createTask(
                body: .json(
                    .init(
                        zone: "zone-a", target: .matching("env=prod,role!=db", allZones: true), steps: [.init(script: "true")],
                        rollout: .init(maxConcurrency: "1", maxErrors: "50%")))
            ).created.body.json
            #expect(Set(across.runs.map(\.agentId)) == [webA.agentId, webB.agentId])
            #expect(Set(across.runs.map { "\($0.agentId)@\($0.zone)" }) == ["\(webA.agentId)@zone-a", "\(webB.agentId)@zone-b"])
            #expect(across.rollout?.maxConcurrency == "1" && across.rollout?.maxErrors == "50%")
            #expect(across.target.selectorText == "env=prod,role!=db (all zones)")
            _ = (dbA, stagingB)

            // An operator's labels override the agent's; the next fan-out follows them.
            let relabelled = try await api.setAgentLabels(
                path: .init(id: stagingB.agentId), body: .json(.init(labels: .init(additionalProperties: ["env": "prod", "role": "web"])))
            ).ok.body.json
            #expect(relabelled.labelsSetBy == "admin" && relabelled.reportedLabels?.additionalProperties == ["env": "staging"])
            var filter = EventFilter()
            filter.subject = stagingB.agentId
            filter.kinds = [.agentLabelsChanged]
            #expect(try await store.events(filter, limit: 10).count == 2)
            let again = try await api.createTask(
                body: .json(.init(zone: "zone-b", target: .matching("role=web", allZones: false), steps: [.init(script: "true")]))
            ).created.body.json
            #expect(Set(again.runs.map(\.agentId)) == [webB.agentId, stagingB.agentId])
            let cleared = try await api.clearAgentLabels(path: .init(id: stagingB.agentId)).ok.body.json
            #expect(cleared.labels.additionalProperties == ["env": "staging"] && cleared.labelsSetBy == nil)

            // A selector nobody matches is a conflict; nothing is stored.
            let before = try await api.listTasks().ok.body.json.items.count
            let none = try await client.call(
                .post, "/api/v1/tasks", token: admin,
                json: #"{"zone": "zone-a", "target": {"kind": "selector", "selector": "env=nowhere"}, "steps": [{"script": "true"}]}"#)
            #expect(none.status == .conflict, "\(none.body)")
            #expect(try await api.listTasks().ok.body.json.items.count == before)
        }
    }

    @Test func aRecurringSelectorTaskResolvesItsAgentsAtEachOccurrence() async throws {
        let harness = try await TestManager.make(runsScheduler: false)
        let scheduler = RunScheduler(manager: harness.manager)
        let store = harness.manager.store
        try await harness.test { client in
            let admin = try await client.token()
            let keyA = try await client.zoneWithKey("zone-a", admin: admin).key
            let keyB = try await client.zoneWithKey("zone-b", admin: admin).key
            let first = try await Self.enroll(client, zone: "zone-a", key: keyA, labels: ["role": "web"])
            let api = try client.api(token: admin)
            let task = try await api.createTask(
                body: .json(
                    .init(
                        zone: "zone-a", target: .matching("role=web", allZones: true), steps: [.init(script: "true")],
                        // Only the pass below fires it: the manager's own scheduler is off here (and once a
                        // year, a slow set-up cannot cross its time either).
                        schedule: .init(cron: "0 0 1 1 *", overlap: .queue)))
            ).created.body.json
            let fire = try #require(task.schedule?.nextFireTimes.first)
            // An agent of another zone gets the label before the occurrence: it is part of it.
            let second = try await Self.enroll(client, zone: "zone-b", key: keyB, labels: ["role": "web"])
            try await scheduler.pass(now: fire)
            let runs = try await store.runs(RunFilter(taskID: task.id), after: nil, limit: 100)
            #expect(Set(runs.map(\.agentID)) == [first.agentId, second.agentId])
            #expect(Set(runs.map(\.zoneName)) == ["zone-a", "zone-b"])
        }
    }

    @Test func anAgentRestartedWithOtherLabelsReportsThemInItsFirstSync() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            let key = try await client.zoneWithKey("zone-a", admin: admin).key
            let agent = try await Self.enroll(client, zone: "zone-a", key: key, labels: ["env": "staging"])
            var report = AgentReport(
                agentId: agent.agentId,
                facts: HostFacts(hostname: "h", os: "linux", version: "t", addresses: [], labels: .init(additionalProperties: ["env": "prod"])))
            _ = try await client.decode(
                SyncResponse.self, .post, "/api/v1/agent/sync", token: agent.credential, body: SyncRequest(wait: false, reports: [report]))
            let api = try client.api(token: admin)
            #expect(try await api.getAgent(path: .init(id: agent.agentId)).ok.body.json.labels.additionalProperties == ["env": "prod"])
            // A bad label in a report is refused with the field named, and changes nothing.
            report.facts?.labels = .init(additionalProperties: ["env": "-x"])
            let refused = try await client.call(
                .post, "/api/v1/agent/sync", token: agent.credential,
                json: String(decoding: try JSONEncoder().encode(SyncRequest(wait: false, reports: [report])), as: UTF8.self))
            #expect(refused.status == .unprocessableContent && refused.body.contains("facts.labels"), "\(refused.body)")
            #expect(try await api.getAgent(path: .init(id: agent.agentId)).ok.body.json.labels.additionalProperties == ["env": "prod"])
        }
    }

    @Test func badSelectorsLabelsAndRolloutsAre422sNamingTheFieldAndStoreNothing() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            let key = try await client.zoneWithKey("zone-a", admin: admin).key
            let agent = try await client.enroll(zone: "zone-a", key: key)
            let cases: [(target: String, rollout: String, field: String, text: String)] = [
                (#"{"kind": "selector", "selector": "env=prod,,role=web"}"#, "null", "target.selector", "position 10"),
                (#"{"kind": "selector", "selector": "env in (a"}"#, "null", "target.selector", "position"),
                (#"{"kind": "selector"}"#, "null", "target.selector", "required"),
                (#"{"kind": "all", "selector": "env=prod"}"#, "null", "target.selector", "only goes with"),
                (#"{"kind": "all"}"#, #"{"maxConcurrency": "0"}"#, "rollout.maxConcurrency", "at least one"),
                (#"{"kind": "all"}"#, #"{"maxErrors": "150%"}"#, "rollout.maxErrors", "at most 100%"),
                (#"{"kind": "all"}"#, #"{"maxConcurrency": "two"}"#, "rollout.maxConcurrency", "expected a count"),
            ]
            for (target, rollout, field, text) in cases {
                let json = #"{"zone": "zone-a", "target": "# + target + #", "steps": [{"script": "true"}], "rollout": "# + rollout + "}"
                let answer = try await client.call(.post, "/api/v1/tasks", token: admin, json: json)
                #expect(answer.status == .unprocessableContent, "\(json): \(answer.body)")
                #expect(answer.body.contains(field) && answer.body.contains(text), "\(json): \(answer.body)")
            }
            #expect(try await client.api(token: admin).listTasks().ok.body.json.items.isEmpty)

            let badList = try await client.call(.get, "/api/v1/agents?selector=env%3D%3D%3Dx", token: admin)
            #expect(badList.status == .unprocessableContent && badList.body.contains("selector"), "\(badList.body)")
            let badLabels = try await client.call(
                .put, "/api/v1/agents/\(agent.agentId)/labels", token: admin, json: #"{"labels": {"-bad": "x"}}"#)
            #expect(badLabels.status == .unprocessableContent && badLabels.body.contains("labels"), "\(badLabels.body)")
            #expect(try await client.api(token: admin).getAgent(path: .init(id: agent.agentId)).ok.body.json.labels.additionalProperties.isEmpty)
            // A viewer may not set labels.
            let viewer = try await client.user("vic", role: .viewer, admin: admin)
            let refused = try await client.call(.put, "/api/v1/agents/\(agent.agentId)/labels", token: viewer, json: #"{"labels": {"env": "x"}}"#)
            #expect(refused.status == .forbidden)
        }
    }
}
