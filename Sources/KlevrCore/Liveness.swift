/// An agent's liveness as the manager reports it, with the reason.
public enum Liveness: Sendable, Equatable {
    case online
    case offline(reason: String)
    case retired

    /// The API's `status` string.
    public var status: String {
        switch self {
        case .online: "online"
        case .offline: "offline"
        case .retired: "retired"
        }
    }

    /// Heartbeats an agent may miss before it is offline.
    public static let missedHeartbeats: Int64 = 3
    /// Heartbeats after a manager start or stall during which nobody seen before is marked offline: the
    /// usual three, and as many again for a zone to re-elect its primary (its lease ran out while the
    /// manager was away) and for the members to reach the new one.
    public static let reconnectGraceHeartbeats: Int64 = 6

    /// Decides liveness from the last time the agent was heard from.
    ///
    /// - Parameters:
    ///   - lastSeenMillis: when the manager last received a sync from the agent (epoch ms).
    ///   - nowMillis: the current time (epoch ms).
    ///   - heartbeatMillis: the agents' heartbeat interval; three missed heartbeats mean offline.
    ///   - managerStartedMillis: when this manager process started, or resumed after it was stalled
    ///     (stopped, frozen), whichever is later. During the first ``reconnectGraceHeartbeats`` heartbeat
    ///     intervals after that nobody seen before is marked offline: their silence was the manager's, and
    ///     a zone whose primary's lease ran out meanwhile must elect again before its members are heard.
    ///   - retired: whether the agent was retired.
    public static func evaluate(
        lastSeenMillis: Int64, nowMillis: Int64, heartbeatMillis: Int64, managerStartedMillis: Int64, retired: Bool
    ) -> Liveness {
        if retired { return .retired }
        if nowMillis - lastSeenMillis <= missedHeartbeats * heartbeatMillis { return .online }
        if nowMillis - managerStartedMillis <= reconnectGraceHeartbeats * heartbeatMillis && lastSeenMillis > 0 { return .online }
        return .offline(reason: "missed heartbeats")
    }
}
