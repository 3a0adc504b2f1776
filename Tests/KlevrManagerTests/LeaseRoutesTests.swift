import Crypto
import Foundation
import HTTPTypes
import HummingbirdTesting
import KlevrAPI
import KlevrCore
import KlevrManager
import Testing

/// The zone lease over HTTP: election, relayed reports under an epoch, and fencing with 409.
@Suite struct LeaseRoutesTests {
    @Test func aPrimaryRelaysUnderItsEpochAndAStaleEpochIsRefused() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            let key = try await client.zoneWithKey("zone-a", admin: admin)
            let primary = try await client.enroll(zone: "zone-a", key: key.key)
            let member = try await client.enrolled(zone: "zone-a", key: key.key)
            let secondary = member.answer
            let lease = try await client.decode(LeaseResponse.self, .post, "/api/v1/agent/lease", token: primary.credential, body: LeaseRequest(knownEpoch: 0))
            #expect(lease.granted)
            #expect(lease.epoch == 1)
            let refused = try await client.decode(LeaseResponse.self, .post, "/api/v1/agent/lease", token: secondary.credential, body: LeaseRequest(knownEpoch: 0))
            #expect(!refused.granted)
            #expect(refused.holder == primary.agentId)

            let zone = try await client.api(token: admin).getZone(path: .init(zone: "zone-a")).ok.body.json
            #expect(zone.primary == primary.agentId)
            #expect(zone.epoch == 1)

            // The primary's poll carries the whole zone's work, including the secondary's runs.
            let api = try client.api(token: admin)
            let task = try await api.createTask(
                body: .json(.init(zone: "zone-a", target: .oneAgent(secondary.agentId), steps: [.init(script: "true")]))
            ).created.body.json
            let runID = try #require(task.runs.first?.id)
            let work = try await client.decode(
                SyncResponse.self, .post, "/api/v1/agent/sync", token: primary.credential, body: SyncRequest(wait: true, reports: [], epoch: 1))
            #expect(work.runs.map(\.runId) == [runID])
            #expect(work.runs.first?.agentId == secondary.agentId)

            // It relays the secondary's report under its epoch.
            let relayed = AgentReport(
                agentId: secondary.agentId, started: [RunStarted(runId: runID, at: 1)], logs: [],
                results: [RunResult(runId: runID, outcome: .succeeded, exitCode: 0, reason: nil, result: nil, finishedAt: 2)])
            // In clear, a report for another agent is refused: members' reports are relayed signed.
            let unsigned = try await client.call(
                .post, "/api/v1/agent/sync", token: primary.credential,
                json: String(decoding: try JSONEncoder().encode(SyncRequest(wait: false, reports: [relayed], epoch: 1)), as: UTF8.self))
            #expect(unsigned.status == .forbidden)
            // Signed with another key (a primary inventing it), or altered after signing: not applied, recorded.
            let invented = try SignedBlob.sign(relayed, domain: SignedBlob.Domain.report, signer: secondary.agentId, key: .init())
            var altered = try SignedBlob.sign(
                AgentReport(agentId: secondary.agentId, started: [RunStarted(runId: runID, at: 1)], logs: [], results: []), domain: SignedBlob.Domain.report,
                signer: secondary.agentId, key: member.signingKey)
            altered.payload = try JSONEncoder().encode(relayed).base64EncodedString()
            let notApplied = try await client.decode(
                SyncResponse.self, .post, "/api/v1/agent/sync", token: primary.credential,
                body: SyncRequest(wait: false, reports: [], epoch: 1, relayed: [invented, altered]))
            #expect(notApplied.memberAcks?[secondary.agentId] == nil)
            #expect(try await api.getRun(path: .init(id: runID)).ok.body.json.status == .dispatched)
            let forgeries = try await api.zoneEvents(path: .init(zone: "zone-a")).ok.body.json
            #expect(forgeries.items.filter { $0.kind.rawValue == "agent.relay_forgery" && $0.subject == primary.agentId }.count == 2)

            // Signed by the member, it is applied; the acknowledgements come back signed for the member.
            let genuine = try SignedBlob.sign(relayed, domain: SignedBlob.Domain.report, signer: secondary.agentId, key: member.signingKey)
            let acks = try await client.decode(
                SyncResponse.self, .post, "/api/v1/agent/sync", token: primary.credential,
                body: SyncRequest(wait: false, reports: [], epoch: 1, relayed: [genuine]))
            let managerKey = try #require(Keys.signing(primary.managerPublicKey))
            let memberAcks = try #require(acks.memberAcks?[secondary.agentId]).open(MemberAcks.self, domain: SignedBlob.Domain.acks, key: managerKey)
            #expect(memberAcks.agentId == secondary.agentId)
            #expect(memberAcks.acks.results == [runID])
            #expect(try await api.getRun(path: .init(id: runID)).ok.body.json.status == .succeeded)

            // A wrong epoch is refused with 409 stale-epoch and applies nothing.
            let stale = try await client.call(
                .post, "/api/v1/agent/sync", token: primary.credential,
                json: String(decoding: try JSONEncoder().encode(SyncRequest(wait: false, reports: [], epoch: 7, relayed: [genuine])), as: UTF8.self))
            #expect(stale.status == .conflict)
            #expect(try JSONDecoder().decode(ProblemDocument.self, from: Data(stale.body.utf8)).type.hasSuffix("stale-epoch"))
            // Without the lease, an agent cannot relay for others.
            let forged = try await client.call(
                .post, "/api/v1/agent/sync", token: secondary.credential,
                json: String(decoding: try JSONEncoder().encode(SyncRequest(wait: false, reports: [AgentReport(agentId: primary.agentId)])), as: UTF8.self))
            #expect(forged.status == .forbidden)

            let events = try await api.zoneEvents(path: .init(zone: "zone-a")).ok.body.json
            #expect(
                events.items.contains {
                    $0.kind.rawValue == "primary.elected" && $0.subject == primary.agentId && $0.detail.additionalProperties["epoch"] == "1"
                })
        }
    }
}
