/// Errors of the storage layer; the manager maps each to one HTTP problem.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    case notFound(String)
    case conflict(String)
    case invalidInput(String)
    case unavailable(String)
    /// A message from a primary whose lease epoch is no longer current: it must step down.
    case staleEpoch(String)
    /// A stored value this build does not know (never mapped to a default).
    case corrupt(String)

    public var description: String {
        switch self {
        case .notFound(let message), .conflict(let message), .invalidInput(let message), .unavailable(let message), .staleEpoch(let message),
            .corrupt(let message):
            message
        }
    }
}
