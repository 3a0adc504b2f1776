/// Errors of the storage layer; the manager maps each to one HTTP problem.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    case notFound(String)
    case conflict(String)
    case invalidInput(String)
    case unavailable(String)

    public var description: String {
        switch self {
        case .notFound(let message), .conflict(let message), .invalidInput(let message), .unavailable(let message): message
        }
    }
}
