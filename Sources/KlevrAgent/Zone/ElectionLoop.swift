import Foundation
import KlevrAPI
import KlevrPeerAPI
import KlevrCore
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// Drives the election machine: ticks it, asks the manager for the lease, looks for the primary
/// through the membership list, and logs role changes.
struct ElectionLoop: Sendable {
    let link: ZoneLink
    let peerAddress: String
    let priority: Int
    let logger: Logger

    func run() async {
        var lastSearch: Int64 = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            // A member counts an open poll held by its primary as hearing it (a dead primary's connection
            // closes; a frozen one's poll times out: 5 s for the first successors, the watchers, 37 s for
            // the others), unless its last poll failed: then only an answer counts again. A member other
            // than a watcher, its poll held, ticks every 2 s; the others four times a second.
            var relaxed = false
            if link.heldPolls.withLock({ $0 > 0 }), !link.lastPollFailed.withLock({ $0 }),
                case .follower(let primary?, let epoch) = await link.zone.role
            {
                _ = await link.zone.heard(primary: primary, epoch: epoch, address: nil)
                relaxed = await !link.zone.isWatcher
            }
            let action = await link.zone.handle(.tick(now: Clock.nowMillis()))
            if action == .findPrimary {
                // Searching costs requests to every member: at most twice a second.
                let now = Clock.nowMillis()
                if now - lastSearch >= 500 {
                    lastSearch = now
                    await perform(action)
                }
            } else {
                await perform(action)
            }
            try? await Task.sleep(for: .milliseconds(relaxed ? 2_000 : 250))
        }
    }

    func perform(_ action: ElectionStateMachine.Action) async {
        switch action {
        case .none:
            return
        case .requestLease(let epoch), .renewLease(let epoch):
            guard let manager = link.manager else { return }
            let started = Clock.nowMillis()
            do {
                let answer = try await manager.lease(
                    LeaseRequest(knownEpoch: epoch, peerAddress: peerAddress, priority: priority), timeout: .seconds(2))
                if let time = answer.managerTime { link.clock.observe(time) }
                let next: ElectionStateMachine.Action
                if answer.granted {
                    // The lease is counted from when we asked, on our own clock: never longer than the manager's.
                    next = await link.zone.handle(.leaseGranted(epoch: answer.epoch, expiresAt: started + answer.durationMillis, now: Clock.nowMillis()))
                } else {
                    await link.zone.learn(address: answer.holderAddress, of: answer.holder)
                    next = await link.zone.handle(
                        .leaseRefused(holder: answer.holder, epoch: answer.epoch, expiresIn: answer.durationMillis, now: Clock.nowMillis()))
                }
                await perform(next)
            } catch {
                await perform(await link.zone.handle(.managerUnreachable(now: Clock.nowMillis())))
            }
        case .becomePrimary(let epoch):
            link.news.withLock { $0.forgetFollowed() }
            logger.notice("this agent is now the zone's primary", metadata: ["epoch": "\(epoch)"])
        case .stepDown(let epoch):
            logger.warning("stepping down as primary", metadata: ["epoch": "\(epoch)"])
            await link.queues.wakeAll()
            // Stepping down on the manager's refusal already names the new holder: say whom it follows now
            // (no `follow` action comes for a primary it already knows).
            if case .follower(let primary?, let newEpoch) = await link.zone.role {
                link.tell(link.news.withLock { $0.follow(primary, epoch: newEpoch) })
            }
        case .follow(let primary, let epoch):
            // The machine re-confirms a primary it already follows (each refused lease): said once.
            link.tell(link.news.withLock { $0.follow(primary, epoch: epoch) })
        case .findPrimary:
            for address in await link.zone.candidatesToAsk() {
                if let (primary, epoch, primaryAddress) = await ask(address) {
                    await perform(await link.zone.heard(primary: primary, epoch: epoch, address: primaryAddress))
                    return
                }
            }
        }
    }

    /// Asks the member at `address` whom it follows. Only a signed answer counts, and only the primary
    /// and epoch of the manager-signed membership it carries (or the one this agent holds): a fake peer
    /// cannot make this agent follow anyone.
    func ask(_ address: String) async -> (primary: String, epoch: Int64, address: String)? {
        let zone = link.zone
        guard let answer = try? await link.whois(address) else { return nil }
        let whois = answer.value
        guard whois.agentId == answer.signer else { return nil }
        guard let list = await zone.membership, list.primary != link.identity.agentId, let primary = list.member(list.primary) else { return nil }
        if whois.role == .primary && whois.agentId == list.primary {
            if let time = whois.managerTime { link.clock.observe(time, fromPeer: true) }
            return (list.primary, list.epoch, address)
        }
        if whois.primary == list.primary {
            return (list.primary, list.epoch, primary.peerAddress.isEmpty ? (whois.primaryAddress ?? "") : primary.peerAddress)
        }
        return nil
    }
}
