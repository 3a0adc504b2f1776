/// A user's role; each role includes the rights of the ones below it.
public enum Role: String, Codable, Sendable, CaseIterable, Comparable {
    /// Reads everything, changes nothing (except its own API tokens).
    case viewer
    /// Runs and cancels tasks, retires agents.
    case operator_ = "operator"
    /// Everything: zones, enrollment keys, users.
    case admin

    private var rank: Int {
        switch self {
        case .viewer: 0
        case .operator_: 1
        case .admin: 2
        }
    }

    public static func < (lhs: Role, rhs: Role) -> Bool { lhs.rank < rhs.rank }
}
