import KlevrCore
import Testing

/// The election machine's transition table: every role against every kind of event.
@Suite struct ElectionStateMachineTests {
    typealias Role = ElectionStateMachine.Role
    typealias Event = ElectionStateMachine.Event
    typealias Action = ElectionStateMachine.Action

    static let me = "agent-b"
    static let t0: Int64 = 1_000_000
    static let config = ElectionStateMachine.Config(canReachManager: true, failoverTimeout: 2_000, renewInterval: 1_000, retryInterval: 500)

    /// A machine in `role`, whose last reference time is `t0`.
    static func machine(_ role: Role, config: ElectionStateMachine.Config = config) -> ElectionStateMachine {
        // Followers start at t0; the others start long before and reach their role at t0.
        var machine: ElectionStateMachine
        if case .follower = role {
            machine = ElectionStateMachine(id: me, config: config, now: t0)
        } else {
            machine = ElectionStateMachine(id: me, config: config, now: t0 - 10 * config.failoverTimeout)
        }
        switch role {
        case .follower(let primary, let epoch):
            if let primary { _ = machine.handle(.heardPrimary(id: primary, epoch: epoch, now: t0)) }
        case .candidate(let epoch):
            if epoch > 0 { _ = machine.handle(.heardPrimary(id: "agent-a", epoch: epoch, now: t0 - config.failoverTimeout)) }
            _ = machine.handle(.tick(now: t0))
        case .primary(let epoch, let expiresAt):
            _ = machine.handle(.tick(now: t0 - config.failoverTimeout))  // candidate now
            _ = machine.handle(.leaseGranted(epoch: epoch, expiresAt: expiresAt, now: t0))
        }
        #expect(machine.role == role, "fixture for \(role)")
        return machine
    }

    struct Row: CustomTestStringConvertible, Sendable {
        var name: String
        var from: Role
        var event: Event
        var to: Role
        var action: Action
        var canReachManager = true
        var testDescription: String { name }
    }

    static let rows: [Row] = [
        // follower
        Row(name: "follower, quiet primary, not yet timed out", from: .follower(primary: "agent-a", epoch: 3), event: .tick(now: t0 + 1_999),
            to: .follower(primary: "agent-a", epoch: 3), action: .none),
        Row(name: "follower, primary silent past the timeout asks for the lease", from: .follower(primary: "agent-a", epoch: 3),
            event: .tick(now: t0 + 2_000), to: .candidate(epoch: 3), action: .requestLease(knownEpoch: 3)),
        Row(name: "follower without a manager route looks for the primary instead", from: .follower(primary: "agent-a", epoch: 3),
            event: .tick(now: t0 + 2_000), to: .follower(primary: "agent-a", epoch: 3), action: .findPrimary, canReachManager: false),
        Row(name: "follower hears a new primary", from: .follower(primary: "agent-a", epoch: 3), event: .heardPrimary(id: "agent-c", epoch: 4, now: t0 + 10),
            to: .follower(primary: "agent-c", epoch: 4), action: .follow(primary: "agent-c", epoch: 4)),
        Row(name: "follower hears its primary again", from: .follower(primary: "agent-a", epoch: 3), event: .heardPrimary(id: "agent-a", epoch: 3, now: t0 + 10),
            to: .follower(primary: "agent-a", epoch: 3), action: .none),
        Row(name: "follower ignores a stale primary", from: .follower(primary: "agent-a", epoch: 3), event: .heardPrimary(id: "agent-c", epoch: 2, now: t0 + 10),
            to: .follower(primary: "agent-a", epoch: 3), action: .none),
        Row(name: "follower ignores a late grant", from: .follower(primary: "agent-a", epoch: 3), event: .leaseGranted(epoch: 4, expiresAt: t0 + 3_000, now: t0),
            to: .follower(primary: "agent-a", epoch: 3), action: .none),
        Row(name: "follower learns the holder from a refusal", from: .follower(primary: nil, epoch: 0),
            event: .leaseRefused(holder: "agent-a", epoch: 5, expiresIn: 1_000, now: t0), to: .follower(primary: "agent-a", epoch: 5),
            action: .follow(primary: "agent-a", epoch: 5)),
        Row(name: "follower is not fenced", from: .follower(primary: "agent-a", epoch: 3), event: .fenced(now: t0),
            to: .follower(primary: "agent-a", epoch: 3), action: .none),
        Row(name: "follower ignores an unreachable manager", from: .follower(primary: "agent-a", epoch: 3), event: .managerUnreachable(now: t0),
            to: .follower(primary: "agent-a", epoch: 3), action: .none),
        // candidate
        Row(name: "candidate gets the lease", from: .candidate(epoch: 3), event: .leaseGranted(epoch: 4, expiresAt: t0 + 3_000, now: t0 + 5),
            to: .primary(epoch: 4, leaseExpiresAt: t0 + 3_000), action: .becomePrimary(epoch: 4)),
        Row(name: "candidate ignores a grant that is not newer", from: .candidate(epoch: 3), event: .leaseGranted(epoch: 3, expiresAt: t0 + 3_000, now: t0 + 5),
            to: .candidate(epoch: 3), action: .none),
        Row(name: "candidate refused follows the holder", from: .candidate(epoch: 3), event: .leaseRefused(holder: "agent-c", epoch: 4, expiresIn: 800, now: t0 + 5),
            to: .follower(primary: "agent-c", epoch: 4), action: .follow(primary: "agent-c", epoch: 4)),
        Row(name: "candidate hears a primary and follows it", from: .candidate(epoch: 3), event: .heardPrimary(id: "agent-c", epoch: 4, now: t0 + 5),
            to: .follower(primary: "agent-c", epoch: 4), action: .follow(primary: "agent-c", epoch: 4)),
        Row(name: "candidate retries after the retry interval", from: .candidate(epoch: 3), event: .tick(now: t0 + 500),
            to: .candidate(epoch: 3), action: .requestLease(knownEpoch: 3)),
        Row(name: "candidate waits before retrying", from: .candidate(epoch: 3), event: .tick(now: t0 + 499), to: .candidate(epoch: 3), action: .none),
        Row(name: "candidate without a manager falls back to searching", from: .candidate(epoch: 3), event: .managerUnreachable(now: t0 + 5),
            to: .follower(primary: nil, epoch: 3), action: .findPrimary),
        Row(name: "candidate is not fenced", from: .candidate(epoch: 3), event: .fenced(now: t0), to: .candidate(epoch: 3), action: .none),
        // primary
        Row(name: "primary renews on schedule", from: .primary(epoch: 4, leaseExpiresAt: t0 + 3_000), event: .tick(now: t0 + 1_000),
            to: .primary(epoch: 4, leaseExpiresAt: t0 + 3_000), action: .renewLease(epoch: 4)),
        Row(name: "primary waits between renewals", from: .primary(epoch: 4, leaseExpiresAt: t0 + 3_000), event: .tick(now: t0 + 999),
            to: .primary(epoch: 4, leaseExpiresAt: t0 + 3_000), action: .none),
        Row(name: "primary whose lease ran out steps down", from: .primary(epoch: 4, leaseExpiresAt: t0 + 3_000), event: .tick(now: t0 + 3_000),
            to: .follower(primary: nil, epoch: 4), action: .stepDown(epoch: 4)),
        Row(name: "primary renewal extends the lease", from: .primary(epoch: 4, leaseExpiresAt: t0 + 3_000),
            event: .leaseGranted(epoch: 4, expiresAt: t0 + 4_000, now: t0 + 1_000), to: .primary(epoch: 4, leaseExpiresAt: t0 + 4_000), action: .none),
        Row(name: "primary ignores a grant of another epoch", from: .primary(epoch: 4, leaseExpiresAt: t0 + 3_000),
            event: .leaseGranted(epoch: 5, expiresAt: t0 + 4_000, now: t0 + 1_000), to: .primary(epoch: 4, leaseExpiresAt: t0 + 3_000), action: .none),
        Row(name: "primary refused steps down", from: .primary(epoch: 4, leaseExpiresAt: t0 + 3_000),
            event: .leaseRefused(holder: "agent-c", epoch: 5, expiresIn: 3_000, now: t0 + 1),
            to: .follower(primary: "agent-c", epoch: 5), action: .stepDown(epoch: 4)),
        Row(name: "fenced primary steps down", from: .primary(epoch: 4, leaseExpiresAt: t0 + 3_000), event: .fenced(now: t0 + 1),
            to: .follower(primary: nil, epoch: 4), action: .stepDown(epoch: 4)),
        Row(name: "primary hearing a newer primary steps down", from: .primary(epoch: 4, leaseExpiresAt: t0 + 3_000),
            event: .heardPrimary(id: "agent-c", epoch: 5, now: t0 + 1), to: .follower(primary: "agent-c", epoch: 5), action: .stepDown(epoch: 4)),
        Row(name: "primary ignores an older primary", from: .primary(epoch: 4, leaseExpiresAt: t0 + 3_000),
            event: .heardPrimary(id: "agent-a", epoch: 3, now: t0 + 1), to: .primary(epoch: 4, leaseExpiresAt: t0 + 3_000), action: .none),
        Row(name: "primary keeps serving while the manager is unreachable", from: .primary(epoch: 4, leaseExpiresAt: t0 + 3_000),
            event: .managerUnreachable(now: t0 + 1), to: .primary(epoch: 4, leaseExpiresAt: t0 + 3_000), action: .none),
    ]

    @Test(arguments: rows)
    func transition(row: Row) {
        let config = ElectionStateMachine.Config(canReachManager: row.canReachManager, failoverTimeout: 2_000, renewInterval: 1_000, retryInterval: 500)
        var machine = Self.machine(row.from, config: config)
        let action = machine.handle(row.event)
        #expect(action == row.action)
        #expect(machine.role == row.to)
    }

    @Test func everyRoleMeetsEveryKindOfEvent() {
        func kind(_ role: Role) -> String {
            switch role {
            case .follower: "follower"
            case .candidate: "candidate"
            case .primary: "primary"
            }
        }
        func kind(_ event: Event) -> String {
            switch event {
            case .tick: "tick"
            case .heardPrimary: "heard"
            case .leaseGranted: "granted"
            case .leaseRefused: "refused"
            case .fenced: "fenced"
            case .managerUnreachable: "unreachable"
            }
        }
        let covered = Set(Self.rows.map { kind($0.from) + "/" + kind($0.event) })
        for role in ["follower", "candidate", "primary"] {
            for event in ["tick", "heard", "granted", "refused", "fenced", "unreachable"] {
                #expect(covered.contains(role + "/" + event), "no row for \(role) + \(event)")
            }
        }
    }

    @Test func aRefusedCandidateCampaignsAgainWhenTheLeaseRunsOutUnlessItHearsTheHolder() {
        var machine = Self.machine(.candidate(epoch: 3))
        _ = machine.handle(.leaseRefused(holder: "agent-a", epoch: 3, expiresIn: 700, now: Self.t0 + 10))
        #expect(machine.handle(.tick(now: Self.t0 + 700)) == .none)
        #expect(machine.handle(.tick(now: Self.t0 + 760)) == .requestLease(knownEpoch: 3))
        var alive = Self.machine(.candidate(epoch: 3))
        _ = alive.handle(.leaseRefused(holder: "agent-a", epoch: 3, expiresIn: 700, now: Self.t0 + 10))
        _ = alive.handle(.heardPrimary(id: "agent-a", epoch: 3, now: Self.t0 + 500))
        #expect(alive.handle(.tick(now: Self.t0 + 760)) == .none)
    }

    @Test func lowerRankedCandidatesWaitTheirTurn() {
        var second = Self.machine(.follower(primary: "agent-a", epoch: 3))
        second.campaignDelay = 300
        #expect(second.handle(.tick(now: Self.t0 + 2_000)) == .none)
        #expect(second.handle(.tick(now: Self.t0 + 2_300)) == .requestLease(knownEpoch: 3))
        // The delay only orders agents that can campaign at all.
        var noRoute = Self.machine(.follower(primary: "agent-a", epoch: 3), config: .init(canReachManager: false))
        noRoute.campaignDelay = 900
        #expect(noRoute.handle(.tick(now: Self.t0 + 2_000)) == .findPrimary)
    }

    @Test func aFreshAgentWaitsOneTimeoutThenCampaigns() {
        var machine = ElectionStateMachine(id: Self.me, config: Self.config, now: Self.t0)
        #expect(machine.handle(.tick(now: Self.t0 + 500)) == .none)
        #expect(machine.handle(.tick(now: Self.t0 + 2_000)) == .requestLease(knownEpoch: 0))
        #expect(machine.handle(.leaseGranted(epoch: 1, expiresAt: Self.t0 + 5_000, now: Self.t0 + 2_010)) == .becomePrimary(epoch: 1))
        #expect(machine.knownEpoch == 1)
    }
}
