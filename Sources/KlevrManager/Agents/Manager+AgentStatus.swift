import KlevrAPI
import KlevrCore
import KlevrStore

/// An agent's status as the operator API shows it: its liveness, or `retiring` while it stops its runs.
struct AgentStatus: Sendable, Equatable {
    var value: Components.Schemas.Agent.StatusPayload
    /// Why the agent is offline or retiring.
    var reason: String?

    /// The status and its reason in one line (`offline: missed heartbeats`), as the liveness events say it.
    var text: String { value.rawValue + (reason.map { ": " + $0 } ?? "") }
}

extension Manager {
    /// An agent's status now. An offline agent of a zone that lost its primary is offline because of
    /// its zone (`zoneUnreachable`), which is what the reason then says.
    func status(of agent: AgentRecord, zoneUnreachable: Bool = false) -> AgentStatus {
        if agent.retiredAt == nil && agent.retireRequestedAt != nil {
            return AgentStatus(value: .retiring, reason: "stopping its runs; its credential dies when they stopped")
        }
        let liveness = Liveness.evaluate(
            lastSeenMillis: agent.lastSeenAt, nowMillis: Clock.nowMillis(), heartbeatMillis: Int64(config.heartbeatSeconds) * 1000,
            managerStartedMillis: max(startedAt, stalls.resumedAt()), retired: agent.retiredAt != nil)
        switch liveness {
        case .online: return AgentStatus(value: .online)
        case .offline(let why): return AgentStatus(value: .offline, reason: zoneUnreachable ? "zone unreachable" : why)
        case .retired: return AgentStatus(value: .retired)
        }
    }

    func isOnline(_ agent: AgentRecord) -> Bool {
        status(of: agent).value == .online
    }

    /// Whether a zone that had a primary has none now: its agents' silence is then the zone's, not theirs.
    func zoneUnreachable(_ zoneID: String) async throws -> Bool {
        guard let lease = try await store.lease(zoneID: zoneID) else { return false }
        return lease.expiresAt <= Clock.nowMillis()
    }
}
