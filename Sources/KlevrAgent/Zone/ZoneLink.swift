import AsyncHTTPClient
import Foundation
import KlevrAPI
import KlevrCore
import Logging
import NIOCore
import NIOHTTP1

/// The agent's line to the manager: directly when it is the zone's primary (under its lease epoch),
/// through the primary's peer API otherwise. Every answer's work is routed here: this agent's runs and
/// cancels to its own executor, the other members' (on a primary) to their queues.
struct ZoneLink: Sendable {
    struct NoUpstream: Error, CustomStringConvertible {
        var description: String { "no primary known yet" }
    }

    let identity: AgentIdentity
    let zone: ZoneState
    let managerClient: JSONClient?
    let http: HTTPClient
    let queues: MemberQueues
    let logger: Logger
    let ownRuns: @Sendable ([RunEnvelope]) async -> Void
    let ownCancels: @Sendable ([String]) async -> Void

    var signer: JSONClient.PeerSigner { .init(agentID: identity.agentId, secret: identity.zonePeerSecret) }

    func peerClient(_ address: String) -> JSONClient {
        JSONClient(baseURL: "http://\(address)", http: http, peerSigner: signer)
    }

    /// One sync through the current upstream.
    func sync(_ request: SyncRequest, timeout: TimeAmount) async throws -> SyncResponse {
        switch await zone.upstream {
        case .manager(let epoch):
            guard let managerClient else { throw NoUpstream() }
            var fenced = request
            fenced.epoch = epoch
            let answer: SyncResponse
            do {
                answer = try await managerClient.send(.POST, "/api/v1/agent/sync", body: fenced, as: SyncResponse.self, timeout: timeout)
            } catch let failure as JSONClient.Failure where failure.status == 409 {
                // Our epoch is stale: another agent took over. Step down; nothing we sent was applied.
                let action = await zone.handle(.fenced(now: Clock.nowMillis()))
                logger.warning("the manager fenced this primary; stepping down", metadata: ["epoch": "\(epoch)", "action": "\(action)"])
                throw failure
            }
            if let membership = answer.membership { await zone.update(membership) }
            await route(answer)
            return answer
        case .peer(let address):
            let answer: SyncResponse
            do {
                // The primary answers a poll within about a second (plus its relay to the manager): a short
                // deadline notices a dead or switched primary soon.
                answer = try await peerClient(address).send(
                    .POST, "/peer/v1/sync", body: request, as: SyncResponse.self, timeout: min(timeout, .seconds(12)))
            } catch let failure as JSONClient.Failure where failure.status == 409 {
                if let hint = try? JSONDecoder().decode(PeerWhois.self, from: Data(failure.body.utf8)), let primary = hint.primary,
                    primary != identity.agentId
                {
                    _ = await zone.heard(primary: primary, epoch: hint.epoch, address: hint.primaryAddress)
                }
                throw failure
            }
            if let membership = answer.membership {
                await zone.update(membership)
                _ = await zone.heard(primary: membership.primary, epoch: membership.epoch, address: address)
            }
            await route(answer)
            return answer
        case .none:
            throw NoUpstream()
        }
    }

    /// Hands this agent's runs and cancels to it, and the others' to their queues.
    func route(_ answer: SyncResponse) async {
        let me = identity.agentId
        let mine = answer.runs.filter { $0.agentId == me }
        if !mine.isEmpty { await ownRuns(mine) }
        let myCancels = answer.cancels.filter { $0.agentId == me }.map(\.runId)
        if !myCancels.isEmpty { await ownCancels(myCancels) }
        let others = answer.runs.filter { $0.agentId != me }
        let otherCancels = answer.cancels.filter { $0.agentId != me }
        if !others.isEmpty || !otherCancels.isEmpty { await queues.push(runs: others, cancels: otherCancels) }
    }
}
