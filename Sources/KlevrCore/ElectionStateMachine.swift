/// One agent's view of its zone's election, as a value: inputs are lease answers from the manager,
/// heartbeats of a primary and timer ticks; outputs are actions for the I/O shell to perform.
///
/// The manager arbitrates with a lease and a fencing epoch per zone (a compare-and-set on the zone's
/// lease row): the machine only decides when to ask for the lease, when to renew it, and when to stop
/// acting as primary. Times are epoch milliseconds so that tests drive the clock.
public struct ElectionStateMachine: Sendable, Equatable {
    /// Settings of one agent.
    public struct Config: Sendable, Equatable {
        /// Agents without a manager URL never ask for the lease.
        public var canReachManager: Bool
        /// Silence of the primary after which a candidate asks for the lease.
        public var failoverTimeout: Int64
        /// How often a primary renews its lease.
        public var renewInterval: Int64
        /// How soon a candidate asks again after a refusal-free silence (an unanswered request).
        public var retryInterval: Int64

        public init(canReachManager: Bool, failoverTimeout: Int64 = 2_000, renewInterval: Int64 = 1_000, retryInterval: Int64 = 500) {
            self.canReachManager = canReachManager
            self.failoverTimeout = failoverTimeout
            self.renewInterval = renewInterval
            self.retryInterval = retryInterval
        }
    }

    /// The agent's role.
    public enum Role: Sendable, Equatable {
        /// Follows `primary` (nil: none known) of `epoch`.
        case follower(primary: String?, epoch: Int64)
        /// Asked the manager for the lease after `epoch`.
        case candidate(epoch: Int64)
        /// Holds the lease of `epoch` until `leaseExpiresAt`.
        case primary(epoch: Int64, leaseExpiresAt: Int64)
    }

    /// What happened.
    public enum Event: Sendable, Equatable {
        case tick(now: Int64)
        /// A primary announced itself (heartbeat or membership answer).
        case heardPrimary(id: String, epoch: Int64, now: Int64)
        /// The manager granted or renewed the lease.
        case leaseGranted(epoch: Int64, expiresAt: Int64, now: Int64)
        /// The manager refused: another agent holds the lease for `expiresIn` more milliseconds.
        case leaseRefused(holder: String, epoch: Int64, expiresIn: Int64, now: Int64)
        /// The manager rejected a message of ours as coming from a stale epoch (409).
        case fenced(now: Int64)
        /// The manager could not be reached.
        case managerUnreachable(now: Int64)
    }

    /// What the I/O shell must do.
    public enum Action: Sendable, Equatable {
        case none
        /// Ask the manager for the lease (after the given known epoch).
        case requestLease(knownEpoch: Int64)
        /// Renew the lease of this epoch.
        case renewLease(epoch: Int64)
        /// Start acting as primary of this epoch: relay, announce to members.
        case becomePrimary(epoch: Int64)
        /// Stop acting as primary at once (lease lost or fenced).
        case stepDown(epoch: Int64)
        /// Follow this primary.
        case follow(primary: String, epoch: Int64)
        /// No manager route and no primary: look for the primary through the membership list.
        case findPrimary
    }

    public let id: String
    public let config: Config
    public private(set) var role: Role
    /// When the primary was last heard from (followers), or the lease was last asked for (candidates),
    /// or last renewed (primaries).
    public private(set) var since: Int64
    /// Extra wait before campaigning, from this agent's rank among the candidates (0 for the first):
    /// candidates are ranked by priority, then id, so that they do not all ask at once.
    public var campaignDelay: Int64 = 0

    public init(id: String, config: Config, now: Int64) {
        self.id = id
        self.config = config
        self.role = .follower(primary: nil, epoch: 0)
        // A fresh agent waits one failover timeout for a primary before asking for the lease.
        self.since = now
    }

    /// The highest epoch this agent knows of.
    public var knownEpoch: Int64 {
        switch role {
        case .follower(_, let epoch), .candidate(let epoch), .primary(let epoch, _): epoch
        }
    }

    /// The reference time that makes a follower campaign right when a refused lease runs out, unless
    /// it hears the holder before (a live primary keeps answering its members).
    static func campaignAfter(_ expiresIn: Int64, now: Int64, config: Config) -> Int64 {
        now + max(0, expiresIn) + 50 - config.failoverTimeout
    }

    /// Applies an event and returns the action to perform.
    public mutating func handle(_ event: Event) -> Action {
        switch (role, event) {
        // MARK: follower
        case (.follower(let primary, let epoch), .tick(let now)):
            guard now - since >= config.failoverTimeout + (config.canReachManager ? campaignDelay : 0) else { return .none }
            guard config.canReachManager else { return .findPrimary }
            role = .candidate(epoch: epoch)
            since = now
            _ = primary
            return .requestLease(knownEpoch: epoch)
        case (.follower(let primary, let epoch), .heardPrimary(let other, let newEpoch, let now)):
            guard newEpoch >= epoch, other != id else { return .none }
            since = now
            role = .follower(primary: other, epoch: newEpoch)
            return primary == other && epoch == newEpoch ? .none : .follow(primary: other, epoch: newEpoch)
        case (.follower, .leaseGranted), (.follower, .fenced), (.follower, .managerUnreachable):
            return .none
        case (.follower(_, let epoch), .leaseRefused(let holder, let newEpoch, let expiresIn, let now)):
            guard newEpoch >= epoch, holder != id else { return .none }
            since = Self.campaignAfter(expiresIn, now: now, config: config)
            role = .follower(primary: holder, epoch: newEpoch)
            return .follow(primary: holder, epoch: newEpoch)

        // MARK: candidate
        case (.candidate(let epoch), .tick(let now)):
            guard now - since >= config.retryInterval else { return .none }
            since = now
            return .requestLease(knownEpoch: epoch)
        case (.candidate(let epoch), .leaseGranted(let newEpoch, let expiresAt, let now)):
            guard newEpoch > epoch else { return .none }
            role = .primary(epoch: newEpoch, leaseExpiresAt: expiresAt)
            since = now
            return .becomePrimary(epoch: newEpoch)
        case (.candidate(let epoch), .leaseRefused(let holder, let newEpoch, let expiresIn, let now)):
            guard newEpoch >= epoch, holder != id else { return .none }
            role = .follower(primary: holder, epoch: newEpoch)
            since = Self.campaignAfter(expiresIn, now: now, config: config)
            return .follow(primary: holder, epoch: newEpoch)
        case (.candidate(let epoch), .heardPrimary(let holder, let newEpoch, let now)):
            guard newEpoch >= epoch, holder != id else { return .none }
            role = .follower(primary: holder, epoch: newEpoch)
            since = now
            return .follow(primary: holder, epoch: newEpoch)
        case (.candidate(let epoch), .managerUnreachable(let now)):
            role = .follower(primary: nil, epoch: epoch)
            since = now
            return .findPrimary
        case (.candidate, .fenced):
            return .none

        // MARK: primary
        case (.primary(let epoch, let expiresAt), .tick(let now)):
            if now >= expiresAt {
                role = .follower(primary: nil, epoch: epoch)
                since = now
                return .stepDown(epoch: epoch)
            }
            guard now - since >= config.renewInterval else { return .none }
            since = now
            return .renewLease(epoch: epoch)
        case (.primary(let epoch, _), .leaseGranted(let newEpoch, let expiresAt, _)):
            guard newEpoch == epoch else { return .none }
            role = .primary(epoch: epoch, leaseExpiresAt: expiresAt)
            return .none
        case (.primary(let epoch, _), .leaseRefused(let holder, let newEpoch, _, let now)):
            role = .follower(primary: holder == id ? nil : holder, epoch: max(epoch, newEpoch))
            since = now
            return .stepDown(epoch: epoch)
        case (.primary(let epoch, _), .fenced(let now)):
            role = .follower(primary: nil, epoch: epoch)
            since = now
            return .stepDown(epoch: epoch)
        case (.primary(let epoch, _), .heardPrimary(let other, let newEpoch, let now)):
            guard newEpoch > epoch, other != id else { return .none }
            role = .follower(primary: other, epoch: newEpoch)
            since = now
            return .stepDown(epoch: epoch)
        case (.primary, .managerUnreachable):
            // Keep serving until the lease runs out (the tick steps down then).
            return .none
        }
    }
}
