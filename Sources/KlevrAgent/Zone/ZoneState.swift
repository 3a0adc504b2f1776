import Foundation
import KlevrAPI
import KlevrCore

/// Where the agent sends its sync traffic right now.
enum Upstream: Sendable, Equatable {
    /// This agent is the zone's primary: talk to the manager under the lease epoch.
    case manager(epoch: Int64)
    /// Follow the primary at this peer address.
    case peer(address: String)
    /// No primary known yet.
    case none
}

/// The agent's view of its zone: the election machine, the membership list (kept on disk so that a
/// restarted agent can find its primary without a manager route) and the primary's address.
actor ZoneState {
    let selfID: String
    let seeds: [String]
    let selfAddress: String
    private let membershipPath: String
    private(set) var machine: ElectionStateMachine
    private(set) var membership: Membership?
    private var addresses: [String: String] = [:]

    init(selfID: String, config: ElectionStateMachine.Config, seeds: [String], selfAddress: String, stateDir: String, now: Int64) {
        self.selfID = selfID
        self.seeds = seeds
        self.selfAddress = selfAddress
        self.membershipPath = stateDir + "/membership.json"
        self.machine = ElectionStateMachine(id: selfID, config: config, now: now)
        if let data = FileManager.default.contents(atPath: membershipPath), let stored = try? JSONDecoder().decode(Membership.self, from: data) {
            membership = stored
            for member in stored.members where !member.peerAddress.isEmpty { addresses[member.agentId] = member.peerAddress }
        }
    }

    var role: ElectionStateMachine.Role { machine.role }

    var upstream: Upstream {
        switch machine.role {
        case .primary(let epoch, _): return .manager(epoch: epoch)
        case .follower(let primary?, _):
            guard let address = addresses[primary], !address.isEmpty else { return .none }
            return .peer(address: address)
        case .follower(nil, _), .candidate: return .none
        }
    }

    /// Applies an election event.
    func handle(_ event: ElectionStateMachine.Event) -> ElectionStateMachine.Action {
        machine.handle(event)
    }

    /// A primary was heard of (its id, epoch and, when known, address).
    func heard(primary: String, epoch: Int64, address: String?) -> ElectionStateMachine.Action {
        if let address, !address.isEmpty { addresses[primary] = address }
        return machine.handle(.heardPrimary(id: primary, epoch: epoch, now: Clock.nowMillis()))
    }

    /// Records a member's address without counting it as a sign of life.
    func learn(address: String, of agentID: String) {
        if !address.isEmpty { addresses[agentID] = address }
    }

    /// A new membership list from the primary (or, for the primary, from the manager).
    func update(_ list: Membership) {
        guard list != membership else { return }
        membership = list
        machine.campaignDelay = Self.campaignDelay(of: selfID, in: list)
        for member in list.members where !member.peerAddress.isEmpty { addresses[member.agentId] = member.peerAddress }
        if let data = try? JSONEncoder().encode(list) { try? DurableFile.write(data, to: membershipPath) }
    }

    /// How long this agent waits, beyond the failover timeout, before campaigning: 300 ms per candidate
    /// ranked before it (members with a manager route other than the current primary, by priority
    /// descending, then id). An agent the list does not know yet goes last.
    static func campaignDelay(of agentID: String, in list: Membership) -> Int64 {
        let ranked = list.members
            .filter { $0.canReachManager && $0.agentId != list.primary }
            .sorted { ($0.priority, $1.agentId) > ($1.priority, $0.agentId) }
        let rank = ranked.firstIndex { $0.agentId == agentID } ?? ranked.count
        return Int64(rank) * 300
    }

    /// Addresses to ask when looking for the primary: the members, then the `--peer` seeds.
    func candidatesToAsk() -> [String] {
        var seen: Set<String> = [selfAddress]
        var list: [String] = []
        for address in (membership?.members.map(\.peerAddress) ?? []) + seeds where !address.isEmpty && !seen.contains(address) {
            seen.insert(address)
            list.append(address)
        }
        return list
    }
}
