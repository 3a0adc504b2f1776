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

    /// Decides liveness from the last time the agent was heard from.
    ///
    /// - Parameters:
    ///   - lastSeenMillis: when the manager last received a sync from the agent (epoch ms).
    ///   - nowMillis: the current time (epoch ms).
    ///   - heartbeatMillis: the agents' heartbeat interval; three missed heartbeats mean offline.
    ///   - managerStartedMillis: when this manager process started, or resumed after it was stalled
    ///     (stopped, frozen), whichever is later. During the first three heartbeat intervals after that
    ///     nobody is marked offline: agents are still reconnecting, and their silence was the manager's.
    ///   - retired: whether the agent was retired.
    public static func evaluate(
        lastSeenMillis: Int64, nowMillis: Int64, heartbeatMillis: Int64, managerStartedMillis: Int64, retired: Bool
    ) -> Liveness {
        if retired { return .retired }
        let limit = 3 * heartbeatMillis
        if nowMillis - lastSeenMillis <= limit { return .online }
        if nowMillis - managerStartedMillis <= limit && lastSeenMillis > 0 { return .online }
        return .offline(reason: "missed heartbeats")
    }
}
