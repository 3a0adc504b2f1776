import AsyncHTTPClient
import Crypto
import Foundation
import KlevrAPI
import KlevrClient
import KlevrPeerAPI
import KlevrCore
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// The agent's line to the manager: directly when it is the zone's primary (under its lease epoch),
/// through the primary's peer API otherwise. Every answer's work is routed here: this agent's runs and
/// cancels to its own executor, the other members' (on a primary) to their queues.
///
/// Through a primary, this agent's reports travel signed by this agent (the manager verifies them), its
/// acknowledgements come back signed by the manager, its cancels are checked against the manager's
/// signature, and the primary's answers must be signed by the primary the manager's membership names.
struct ZoneLink: Sendable {
    struct NoUpstream: Error, CustomStringConvertible {
        var description: String { "no primary known yet" }
    }

    let identity: AgentIdentity
    let keys: AgentIdentity.Keys
    let zone: ZoneState
    let clock: ManagerClock
    let manager: ManagerLink?
    let http: HTTPClient
    let queues: MemberQueues
    let logger: Logger
    let ownRuns: @Sendable ([RunEnvelope]) async -> Void
    let ownCancels: @Sendable ([String]) async -> Void
    /// When this agent last sent an empty report through a primary (it refreshes its clock skew).
    let lastHeartbeat = Locked<ContinuousClock.Instant?>(nil)
    /// How many polls this agent holds open on its primary now.
    let heldPolls = Locked(0)
    /// Whether this agent's last poll of its primary failed (timed out, refused, unanswered): until one
    /// succeeds again, a held poll no longer counts as hearing the primary. A frozen primary accepts
    /// connections (the kernel does) but answers none: without this, members re-polling it within half a
    /// second would "hear" it forever and never elect another.
    let lastPollFailed = Locked(false)
    /// Whether an exchange announcing newly heard members is on its way.
    let nudging = Locked(false)
    /// What this agent last said about its link (whom it follows, whether it reaches its upstream).
    let news = Locked(LinkNews())

    /// On a primary: soon (20 ms, gathering others) one exchange with the manager that carries the members
    /// heard now, so that runs queued for a member that just came (back) are handed out at once rather
    /// than at the next poll. At most one is on its way.
    func nudge() {
        guard nudging.withLock({ busy in
            if busy { return false }
            busy = true
            return true
        }) else { return }
        let link = self
        Task {
            try? await Task.sleep(for: .milliseconds(20))
            link.nudging.withLock { $0 = false }
            if case .manager = await link.zone.upstream {
                _ = try? await link.sync(SyncRequest(wait: false, reports: []), timeout: .seconds(10))
            }
        }
    }

    var zoneID: String { zone.zoneID }

    func peerClient(_ address: String) -> PeerClient {
        PeerClient(address: address, http: http, agentID: identity.agentId, zoneID: zone.zoneID, key: keys.signing, clock: clock)
    }

    /// One sync through the current upstream. Losing the upstream and reaching it again are logged once
    /// each (see ``LinkNews``); an answer with an error status still means the upstream was reached.
    func sync(_ request: SyncRequest, timeout: TimeAmount) async throws -> SyncResponse {
        let upstream = await zone.upstream
        let name: String? =
            switch upstream {
            case .manager: "the manager"
            case .peer(_, let primary): "the zone's primary \(primary)"
            case .none: nil
            }
        do {
            let answer = try await exchange(request, through: upstream, timeout: timeout)
            if let name { tell(news.withLock { $0.exchanged(with: name) }) }
            return answer
        } catch {
            let answered: Bool
            switch error {
            case PeerClient.Failure.status: answered = true
            case _ where ManagerLink.refusal(in: error) != nil: answered = true
            default: answered = false
            }
            if let name, answered {
                tell(news.withLock { $0.exchanged(with: name) })
            } else if let name, !(error is NoUpstream), !(error is CancellationError), !Task.isCancelled {
                tell(news.withLock { $0.failed(with: name) }, error: error)
            }
            throw error
        }
    }

    /// Logs a line of ``LinkNews``, if there is one.
    func tell(_ line: LinkNews.Line?, error: (any Error)? = nil) {
        switch line {
        case .none:
            return
        case .following(let primary, let epoch):
            logger.info("following the zone's primary", metadata: ["primary": "\(primary)", "epoch": "\(epoch)"])
        case .lost(let upstream):
            logger.warning("lost \(upstream); retrying", metadata: ["error": "\(error.map { String(describing: $0) } ?? "-")"])
        case .reached(let upstream, let again):
            if again { logger.notice("reached \(upstream) again") } else { logger.info("talking to \(upstream)") }
        }
    }

    private func exchange(_ request: SyncRequest, through upstream: Upstream, timeout: TimeAmount) async throws -> SyncResponse {
        switch upstream {
        case .manager(let epoch):
            guard let manager else { throw NoUpstream() }
            var fenced = request
            fenced.epoch = epoch
            fenced.liveMembers = await queues.liveMembers()
            fenced.membershipDigest = await zone.membershipDigest
            if var own = fenced.reports.first {
                own.clockSkewMillis = clock.skewMillis
                fenced.reports = [own]
            }
            let answer: SyncResponse
            do {
                answer = try await manager.sync(fenced, timeout: timeout)
            } catch let failure where ManagerLink.refusal(in: failure)?.status == 409 {
                // Our epoch is stale: another agent took over. Step down; nothing we sent was applied.
                let action = await zone.handle(.fenced(now: Clock.nowMillis()))
                logger.warning("stepping down as primary: the manager fenced this epoch", metadata: ["epoch": "\(epoch)", "action": "\(action)"])
                await queues.wakeAll()
                throw failure
            }
            if let time = answer.managerTime { clock.observe(time) }
            if let blob = answer.signedMembership, let list = await zone.update(blob) {
                await queues.keepOnly(Set(list.members.map(\.agentId)))
                await queues.wakeAll()
            }
            await route(answer)
            return answer
        case .peer(let address, let primary):
            return try await syncThroughPeer(request, address: address, primary: primary, timeout: timeout)
        case .none:
            throw NoUpstream()
        }
    }

    /// A sync through the primary at `address`.
    private func syncThroughPeer(_ request: SyncRequest, address: String, primary: String, timeout: TimeAmount) async throws -> SyncResponse {
        if await zone.key(of: primary) == nil {
            // The primary is not in the membership held (none yet, or older): ask it for the manager's.
            _ = try? await whois(address)
        }
        guard let primaryKey = await zone.key(of: primary) else { throw NoUpstream() }
        var outgoing = SyncRequest(wait: request.wait, reports: [], membershipDigest: await zone.membershipDigest)
        if var report = request.reports.first {
            if report.isEmpty && !request.wait {
                // The held poll tells the primary this agent lives; an empty report only refreshes the
                // clock skew the manager shows, once a minute.
                let due = lastHeartbeat.withLock { last in
                    guard let last, ContinuousClock.now - last < .seconds(60) else {
                        last = .now
                        return true
                    }
                    return false
                }
                if !due { return SyncResponse(acks: SyncAcks(), runs: [], cancels: [], heartbeatSeconds: identity.heartbeatSeconds) }
            }
            report.clockSkewMillis = clock.skewMillis
            outgoing.relayed = [try SignedBlob.sign(report, domain: SignedBlob.Domain.report, signer: identity.agentId, key: keys.signing)]
        }
        // Watchers (the first successors) hold short polls, so that a primary that freezes with its
        // connections open is noticed within seconds; the others hold long ones.
        let watcher = await zone.isWatcher
        if request.wait {
            outgoing.holdMillis = watcher ? 3_000 : 27_000
        }
        if request.wait { heldPolls.withLock { $0 += 1 } }
        defer { if request.wait { heldPolls.withLock { $0 -= 1 } } }
        let answer: PeerClient.SyncAnswer
        do {
            answer = try await peerClient(address).sync(
                outgoing, timeout: min(timeout, .seconds(Int64(outgoing.holdMillis.map { $0 / 1000 + (watcher ? 2 : 10) } ?? 12))),
                keyOf: { signer, _ in signer == primary ? primaryKey : nil })
            if request.wait { lastPollFailed.withLock { $0 = false } }
        } catch {
            if request.wait { lastPollFailed.withLock { $0 = true } }
            throw error
        }
        let response: SyncResponse
        switch answer {
        case .synced(let synced):
            response = synced
        case .notPrimary(let hint):
            // It no longer leads: follow whom the manager's membership it holds names.
            if let time = hint.managerTime { clock.observe(time, fromPeer: true) }
            if let blob = hint.signedMembership, let list = await zone.update(blob), list.primary != identity.agentId, list.primary != primary {
                _ = await zone.heard(primary: list.primary, epoch: list.epoch, address: list.member(list.primary)?.peerAddress)
            }
            throw PeerClient.Failure.status(409, "\(address) is not the primary")
        }
        if let time = response.managerTime { clock.observe(time, fromPeer: true) }
        var epoch = await zone.membership?.epoch ?? 0
        if let blob = response.signedMembership, let list = await zone.update(blob) { epoch = list.epoch }
        if let list = await zone.membership, list.primary == primary {
            _ = await zone.heard(primary: primary, epoch: max(epoch, list.epoch), address: address)
        }
        var acks = SyncAcks()
        if let blob = response.signedAcks {
            if let opened = try? blob.open(MemberAcks.self, domain: SignedBlob.Domain.acks, key: keys.manager), opened.agentId == identity.agentId {
                acks = opened.acks
            } else {
                logger.warning("the primary passed acknowledgements the manager did not sign for this agent; ignored", metadata: ["primary": "\(primary)"])
            }
        }
        var verified = response
        verified.acks = acks
        verified.runs = response.runs.filter { $0.agentId == identity.agentId }
        verified.cancels = response.cancels.filter { $0.agentId == identity.agentId }
        await route(verified)
        return verified
    }

    /// Asks the member at `address` who it is. Only an answer signed by a member of a manager-signed
    /// membership counts (the one held, or the newer one the answer carries, which is then kept).
    func whois(_ address: String) async throws -> (signer: String, value: KlevrPeerAPI.Components.Schemas.PeerWhois) {
        let managerKey = keys.manager
        let zoneID = self.zoneID
        let held = await zone.membership
        let answer = try await peerClient(address).whois(
            keyOf: { signer, body in
                if let held, let key = held.member(signer).flatMap({ Keys.signing($0.publicKey) }) { return key }
                guard let whois = try? JSONDecoder().decode(KlevrPeerAPI.Components.Schemas.PeerWhois.self, from: body), let blob = whois.signedMembership,
                    let list = ZoneState.open(blob, managerKey: managerKey, zoneID: zoneID)
                else { return nil }
                return list.member(signer).flatMap { Keys.signing($0.publicKey) }
            })
        if let blob = answer.value.signedMembership { await zone.update(blob) }
        return answer
    }

    /// Hands this agent's runs and cancels to it, and the others' to their queues (on a primary).
    /// Cancels take effect only when the manager signed them.
    func route(_ answer: SyncResponse) async {
        let me = identity.agentId
        let mine = answer.runs.filter { $0.agentId == me }
        if !mine.isEmpty { await ownRuns(mine) }
        var myCancels: [String] = []
        for order in answer.cancels where order.agentId == me {
            if order.verifies(with: keys.manager) {
                myCancels.append(order.runId)
            } else {
                logger.warning("ignored a cancel the manager did not sign", metadata: ["run.id": "\(order.runId.prefix(36))"])
            }
        }
        if !myCancels.isEmpty { await ownCancels(myCancels) }
        let others = answer.runs.filter { $0.agentId != me }
        let otherCancels = answer.cancels.filter { $0.agentId != me }
        if !others.isEmpty || !otherCancels.isEmpty { await queues.push(runs: others, cancels: otherCancels) }
    }

    /// On a primary: sends members' signed reports to the manager in one exchange; returns each member's
    /// signed acknowledgements.
    func relay(_ blobs: [SignedBlob]) async -> [String: SignedBlob]? {
        guard case .manager = await zone.upstream else { return nil }
        do {
            let answer = try await sync(SyncRequest(wait: false, reports: [], relayed: blobs), timeout: .seconds(20))
            return answer.memberAcks?.additionalProperties ?? [:]
        } catch {
            logger.warning("could not relay members' reports", metadata: ["count": "\(blobs.count)", "error": "\(error)"])
            return nil
        }
    }
}
