import Crypto
import Foundation
import KlevrAPI
import KlevrCore

/// Where the agent sends its sync traffic right now.
enum Upstream: Sendable, Equatable {
    /// This agent is the zone's primary: talk to the manager under the lease epoch.
    case manager(epoch: Int64)
    /// Follow the primary at this peer address.
    case peer(address: String, primary: String)
    /// No primary known yet.
    case none
}

/// The agent's view of its zone: the election machine, the manager-signed membership (kept on disk so
/// that a restarted agent can find its primary without a manager route) and the primary's address.
///
/// Only a membership signed by the manager is ever accepted, and peers are trusted only if the latest
/// one lists them: a retired agent drops out of the next list and is refused by every member.
actor ZoneState {
    let selfID: String
    let zoneID: String
    let seeds: [String]
    let selfAddress: String
    let managerKey: Curve25519.Signing.PublicKey
    private let membershipPath: String
    private(set) var machine: ElectionStateMachine
    private(set) var membership: Membership?
    private(set) var signedMembership: SignedBlob?
    private var keys: [String: Curve25519.Signing.PublicKey] = [:]
    private var addresses: [String: String] = [:]
    private var changeWaiters: [CheckedContinuation<Void, Never>] = []

    init(
        selfID: String, zoneID: String, managerKey: Curve25519.Signing.PublicKey, config: ElectionStateMachine.Config, seeds: [String],
        selfAddress: String, stateDir: String, now: Int64
    ) {
        self.selfID = selfID
        self.zoneID = zoneID
        self.managerKey = managerKey
        self.seeds = seeds
        self.selfAddress = selfAddress
        self.membershipPath = stateDir + "/membership.json"
        self.machine = ElectionStateMachine(id: selfID, config: config, now: now)
        if let data = FileManager.default.contents(atPath: membershipPath), let stored = try? JSONDecoder().decode(SignedBlob.self, from: data),
            let list = Self.open(stored, managerKey: managerKey, zoneID: zoneID), list.member(selfID) != nil
        {
            membership = list
            signedMembership = stored
            rankInMembership = Self.rank(of: selfID, in: list)
            machine.campaignDelay = Int64(rankInMembership) * 300
            (keys, addresses) = Self.index(list)
        }
    }

    var role: ElectionStateMachine.Role { machine.role }

    var upstream: Upstream {
        switch machine.role {
        case .primary(let epoch, _): return .manager(epoch: epoch)
        case .follower(let primary?, _):
            guard let address = addresses[primary], !address.isEmpty else { return .none }
            return .peer(address: address, primary: primary)
        case .follower(nil, _), .candidate: return .none
        }
    }

    /// The key of a member of the current membership (never this agent's own).
    func key(of agentID: String) -> Curve25519.Signing.PublicKey? {
        agentID == selfID ? nil : keys[agentID]
    }

    /// The digest of the membership held, for `membershipDigest`.
    var membershipDigest: String? { signedMembership?.digest }

    /// Applies an election event.
    func handle(_ event: ElectionStateMachine.Event) -> ElectionStateMachine.Action {
        machine.handle(event)
    }

    /// A primary was heard of (its id, epoch and, when known, address). Callers pass only what the
    /// manager said or signed.
    func heard(primary: String, epoch: Int64, address: String?) -> ElectionStateMachine.Action {
        if let address, !address.isEmpty { addresses[primary] = address }
        return machine.handle(.heardPrimary(id: primary, epoch: epoch, now: Clock.nowMillis()))
    }

    /// Records a member's address without counting it as a sign of life.
    func learn(address: String, of agentID: String) {
        if !address.isEmpty { addresses[agentID] = address }
    }

    /// The membership in a blob, when the manager signed it for this zone.
    static func open(_ blob: SignedBlob, managerKey: Curve25519.Signing.PublicKey, zoneID: String) -> Membership? {
        guard blob.signer == "manager", let list = try? blob.open(Membership.self, domain: SignedBlob.Domain.membership, key: managerKey),
            list.zoneId == zoneID
        else { return nil }
        return list
    }

    /// A membership from the manager (for the primary) or a member: kept when the manager signed it for
    /// this zone and it supersedes the one held (a later epoch, or the same epoch signed later). Returns
    /// the list when it was accepted (nil when refused or already held).
    @discardableResult
    func update(_ blob: SignedBlob) -> Membership? {
        if blob == signedMembership { return nil }
        // A list that does not name this agent is older than its enrollment (or it was retired): it can
        // only come from someone replaying an old list, never from the manager now.
        guard let list = Self.open(blob, managerKey: managerKey, zoneID: zoneID), list.member(selfID) != nil else { return nil }
        if let membership, !list.isNewer(than: membership) { return nil }
        install(list, blob: blob)
        if let data = try? JSONEncoder().encode(blob) { try? DurableFile.write(data, to: membershipPath) }
        for waiter in changeWaiters { waiter.resume() }
        changeWaiters.removeAll()
        return list
    }

    private func install(_ list: Membership, blob: SignedBlob) {
        membership = list
        signedMembership = blob
        rankInMembership = Self.rank(of: selfID, in: list)
        machine.campaignDelay = Int64(rankInMembership) * 300
        let (newKeys, newAddresses) = Self.index(list)
        keys = newKeys
        addresses.merge(newAddresses) { _, new in new }
    }

    private static func index(_ list: Membership) -> (keys: [String: Curve25519.Signing.PublicKey], addresses: [String: String]) {
        var keys: [String: Curve25519.Signing.PublicKey] = [:]
        var addresses: [String: String] = [:]
        for member in list.members {
            if let key = Keys.signing(member.publicKey) { keys[member.agentId] = key }
            if !member.peerAddress.isEmpty { addresses[member.agentId] = member.peerAddress }
        }
        return (keys, addresses)
    }

    /// Waits until the membership changes (or the task is cancelled).
    func membershipChanged() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { changeWaiters.append($0) }
        } onCancel: {
            Task { await self.releaseWaiters() }
        }
    }

    private func releaseWaiters() {
        for waiter in changeWaiters { waiter.resume() }
        changeWaiters.removeAll()
    }

    /// How long this agent waits, beyond the failover timeout, before campaigning: 300 ms per candidate
    /// ranked before it (members with a manager route other than the current primary, by priority
    /// descending, then id). An agent the list does not know yet goes last.
    static func campaignDelay(of agentID: String, in list: Membership) -> Int64 {
        Int64(rank(of: agentID, in: list)) * 300
    }

    /// This agent's place among the candidates to succeed the primary (0 first).
    static func rank(of agentID: String, in list: Membership) -> Int {
        let ranked = list.members
            .filter { $0.canReachManager && $0.agentId != list.primary }
            .sorted { ($0.priority, $1.agentId) > ($1.priority, $0.agentId) }
        return ranked.firstIndex { $0.agentId == agentID } ?? ranked.count
    }

    /// Whether this agent is among the first two successors, who watch the primary closely (short polls) so
    /// that a silent primary is replaced within seconds; the others hold long polls.
    var isWatcher: Bool {
        guard machine.config.canReachManager, membership != nil else { return machine.config.canReachManager }
        return rankInMembership < 2
    }

    /// ``rank(of:in:)`` of this agent in the membership held, computed when it is installed.
    private var rankInMembership = Int.max

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
