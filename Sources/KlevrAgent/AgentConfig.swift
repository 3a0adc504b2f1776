import Logging

/// Everything the agent needs to start, built once by `main` and passed down.
public struct AgentConfig: Sendable {
    /// Base URL of the manager, e.g. `http://127.0.0.1:8090`.
    public var managerURL: String
    public var zone: String
    /// Needed only for the first start; afterwards the identity in the state dir is used.
    public var enrollKey: String?
    /// Identity, outbox and working directories live here (mode 0700).
    public var stateDir: String
    /// Seconds a SIGTERM'd step gets before SIGKILL.
    public var killGraceSeconds: Double

    public init(managerURL: String, zone: String, enrollKey: String?, stateDir: String, killGraceSeconds: Double = 2) {
        self.managerURL = managerURL
        self.zone = zone
        self.enrollKey = enrollKey
        self.stateDir = stateDir
        self.killGraceSeconds = killGraceSeconds
    }
}
