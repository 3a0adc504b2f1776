import Logging

/// Everything the agent needs to start, built once by `main` and passed down.
public struct AgentConfig: Sendable {
    /// Base URL of the manager, e.g. `http://127.0.0.1:8090`; nil for an agent that reaches the
    /// manager only through its zone's primary (`peers`).
    public var managerURL: String?
    public var zone: String
    /// Needed only for the first start; afterwards the identity in the state dir is used.
    public var enrollKey: String?
    /// Identity, outbox and working directories live here (mode 0700).
    public var stateDir: String
    /// Seconds a SIGTERM'd step gets before SIGKILL.
    public var killGraceSeconds: Double
    /// Where the peer API listens (`host:port`).
    public var listenHost: String
    public var listenPort: Int
    /// The `host:port` other members use to reach this agent (default: the listen address).
    public var advertise: String?
    /// Known zone members (`host:port`), to enroll and find the primary without a manager route.
    public var peers: [String]
    /// Silence of the primary after which a candidate asks for the lease (ms).
    public var failoverTimeout: Int64
    /// Election priority: among candidates, higher asks first (then the lower id).
    public var priority: Int

    public init(
        managerURL: String?, zone: String, enrollKey: String?, stateDir: String, killGraceSeconds: Double = 2, listenHost: String = "0.0.0.0",
        listenPort: Int = 18800, advertise: String? = nil, peers: [String] = [], failoverTimeout: Int64 = 2_000, priority: Int = 0
    ) {
        self.priority = priority
        self.managerURL = managerURL
        self.zone = zone
        self.enrollKey = enrollKey
        self.stateDir = stateDir
        self.killGraceSeconds = killGraceSeconds
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.advertise = advertise
        self.peers = peers
        self.failoverTimeout = failoverTimeout
    }

    /// The address advertised to the zone.
    public var peerAddress: String {
        advertise ?? "\(listenHost == "0.0.0.0" ? "127.0.0.1" : listenHost):\(listenPort)"
    }
}

extension AgentConfig: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The configuration without the enrollment key, for anything that prints it.
    public var description: String {
        "AgentConfig(manager: \(managerURL ?? "-"), zone: \(zone), state: \(stateDir), listen: \(listenHost):\(listenPort), peers: \(peers))"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror { Mirror(self, children: ["description": description], displayStyle: .struct) }
}
