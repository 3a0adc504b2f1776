import Crypto
import Foundation
import KlevrAPI

/// The agent's identity, kept in its state dir (`identity.json`, mode 0600) so that restarts and
/// reboots keep the same agent.
public struct AgentIdentity: Codable, Sendable, Equatable {
    public var agentId: String
    public var credential: String
    public var zone: String
    public var managerURL: String
    /// Ed25519 private key, base64 (raw 32 bytes).
    public var privateKey: String
    public var heartbeatSeconds: Int
    /// The manager's run-signing public key (base64), from enrollment.
    public var managerPublicKey: String
    /// The zone's peer secret (base64), from enrollment.
    public var zonePeerSecret: String

    public init(
        agentId: String, credential: String, zone: String, managerURL: String, privateKey: String, heartbeatSeconds: Int, managerPublicKey: String,
        zonePeerSecret: String = ""
    ) {
        self.zonePeerSecret = zonePeerSecret
        self.agentId = agentId
        self.credential = credential
        self.zone = zone
        self.managerURL = managerURL
        self.privateKey = privateKey
        self.heartbeatSeconds = heartbeatSeconds
        self.managerPublicKey = managerPublicKey
    }

    static func path(in stateDir: String) -> String { stateDir + "/identity.json" }

    /// The stored identity, or nil when the agent has not enrolled yet.
    public static func load(stateDir: String) throws -> AgentIdentity? {
        let path = path(in: stateDir)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try JSONDecoder().decode(AgentIdentity.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    func save(stateDir: String) throws {
        try DurableFile.makeDirectory(stateDir)
        try DurableFile.write(try JSONEncoder().encode(self), to: Self.path(in: stateDir))
    }

    /// The key pair of this state dir, created on first use (before enrollment, so that a retried
    /// enrollment presents the same key and the manager recognises the agent).
    static func keyPair(stateDir: String) throws -> Curve25519.Signing.PrivateKey {
        let path = stateDir + "/agent.key"
        if let data = FileManager.default.contents(atPath: path), let raw = Data(base64Encoded: data) {
            return try Curve25519.Signing.PrivateKey(rawRepresentation: raw)
        }
        let key = Curve25519.Signing.PrivateKey()
        try DurableFile.makeDirectory(stateDir)
        try DurableFile.write(Data(key.rawRepresentation.base64EncodedString().utf8), to: path)
        return key
    }
}

extension AgentIdentity: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The identity without its credential, private key or zone secret, for anything that prints it.
    public var description: String { "AgentIdentity(agent: \(agentId), zone: \(zone), manager: \(managerURL))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["description": description], displayStyle: .struct) }
}
