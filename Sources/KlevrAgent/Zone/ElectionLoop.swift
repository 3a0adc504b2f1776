import Foundation
import KlevrAPI
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
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    func perform(_ action: ElectionStateMachine.Action) async {
        switch action {
        case .none:
            return
        case .requestLease(let epoch), .renewLease(let epoch):
            guard let manager = link.managerClient else { return }
            let started = Clock.nowMillis()
            do {
                let answer = try await manager.send(
                    .POST, "/api/v1/agent/lease", body: LeaseRequest(knownEpoch: epoch, peerAddress: peerAddress, priority: priority), as: LeaseResponse.self,
                    timeout: .seconds(2))
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
            logger.notice("this agent is now the zone's primary", metadata: ["epoch": "\(epoch)"])
        case .stepDown(let epoch):
            logger.warning("stepping down as primary", metadata: ["epoch": "\(epoch)"])
        case .follow(let primary, let epoch):
            logger.info("following the zone's primary", metadata: ["primary": "\(primary)", "epoch": "\(epoch)"])
        case .findPrimary:
            for address in await link.zone.candidatesToAsk() {
                guard let answer = try? await link.peerClient(address).send(.GET, "/peer/v1/whois", as: PeerWhois.self, timeout: .seconds(1)) else {
                    continue
                }
                if answer.role == "primary" {
                    await perform(await link.zone.heard(primary: answer.agentId, epoch: answer.epoch, address: address))
                    return
                }
                if let primary = answer.primary, primary != link.identity.agentId, let primaryAddress = answer.primaryAddress {
                    await perform(await link.zone.heard(primary: primary, epoch: answer.epoch, address: primaryAddress))
                    return
                }
            }
        }
    }
}
