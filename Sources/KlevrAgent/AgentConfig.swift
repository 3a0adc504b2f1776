import Crypto
import Foundation
import KlevrClient
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything the agent needs to start, built once by `main` and passed down.
public struct AgentConfig: Sendable {
    /// Base URL of the manager, e.g. `http://127.0.0.1:8090`; nil for an agent that reaches the
    /// manager only through its zone's primary (`peers`).
    public var managerURL: String?
    public var zone: String
    /// Needed only for the first start; afterwards the identity in the state dir is used.
    public var enrollKey: String?
    /// Identity and outbox live here (mode 0700).
    public var stateDir: String
    /// Runs execute in `<workDir>/<run id>/`, removed when the run ends. Outside the state directory,
    /// so that scripts cannot reach the agent's key and credential through their working directory.
    /// Holds nothing but run directories.
    public var workDir: String
    /// The account scripts run as (the agent must be root to switch); nil for the agent's own.
    public var runAs: String?
    /// How many runs execute at once (at least 1); the others wait their turn.
    public var maxRuns: Int
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
    /// How to verify an `https://` manager (`--ca`, `--ca-pin`); nil keeps the choice saved in the
    /// state dir, or the system trust store when none was saved.
    public var managerTrust: ServerTrust?
    /// The agent's labels (`--labels`), validated; reported at enrollment and at each start.
    public var labels: [String: String]

    public init(
        managerURL: String?, zone: String, enrollKey: String?, stateDir: String, killGraceSeconds: Double = 2, listenHost: String = "0.0.0.0",
        listenPort: Int = 18800, advertise: String? = nil, peers: [String] = [], failoverTimeout: Int64 = 2_000, priority: Int = 0,
        workDir: String? = nil, runAs: String? = nil, maxRuns: Int = AgentConfig.defaultMaxRuns, managerTrust: ServerTrust? = nil,
        labels: [String: String] = [:]
    ) {
        self.labels = labels
        self.managerTrust = managerTrust
        self.workDir = workDir ?? Self.defaultWorkDir(stateDir: stateDir)
        self.runAs = runAs
        self.maxRuns = max(1, maxRuns)
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

    /// How many runs execute at once unless `--max-runs` says otherwise.
    public static let defaultMaxRuns = 16

    /// The work directory unless `--work-dir` says otherwise: one per state directory and user under
    /// the system's temporary directory, `<tmp>/klevr-work-<uid>-<12 hex digits of the state dir's hash>`.
    public static func defaultWorkDir(stateDir: String, temporaryDirectory: String = "/tmp") -> String {
        let absolute = URL(fileURLWithPath: stateDir).standardizedFileURL.path
        let digest = SHA256.hash(data: Data(absolute.utf8)).map { String(format: "%02x", $0) }.joined()
        var base = temporaryDirectory
        while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
        return "\(base)/klevr-work-\(geteuid())-\(digest.prefix(12))"
    }

    /// The address advertised to the zone.
    public var peerAddress: String {
        advertise ?? "\(listenHost == "0.0.0.0" ? "127.0.0.1" : listenHost):\(listenPort)"
    }
}

extension AgentConfig: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The configuration without the enrollment key, for anything that prints it.
    public var description: String {
        "AgentConfig(manager: \(managerURL ?? "-"), zone: \(zone), state: \(stateDir), work: \(workDir), run as: \(runAs ?? "-"), max runs: \(maxRuns), trust: \(managerTrust?.summary ?? "saved"), listen: \(listenHost):\(listenPort), peers: \(peers))"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror { Mirror(self, children: ["description": description], displayStyle: .struct) }
}
