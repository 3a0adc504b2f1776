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
    /// The agent's X25519 private key, base64 (raw 32 bytes): run parameters are sealed to it.
    public var sealPrivateKey: String?
    /// The zone's id, as peer requests name it.
    public var zoneId: String?
    /// The manager's X25519 public key and its signature by the manager's signing key (for `/peer/v1/hello`).
    public var managerSealKey: String?
    public var sealKeySignature: String?

    public init(
        agentId: String, credential: String, zone: String, managerURL: String, privateKey: String, heartbeatSeconds: Int, managerPublicKey: String,
        sealPrivateKey: String? = nil, zoneId: String? = nil, managerSealKey: String? = nil, sealKeySignature: String? = nil
    ) {
        self.sealPrivateKey = sealPrivateKey
        self.zoneId = zoneId
        self.managerSealKey = managerSealKey
        self.sealKeySignature = sealKeySignature
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

    /// The X25519 key of this state dir, created on first use like the signing key.
    static func sealKeyPair(stateDir: String) throws -> Curve25519.KeyAgreement.PrivateKey {
        let path = stateDir + "/agent-seal.key"
        if let data = FileManager.default.contents(atPath: path), let raw = Data(base64Encoded: data) {
            return try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: raw)
        }
        let key = Curve25519.KeyAgreement.PrivateKey()
        try DurableFile.makeDirectory(stateDir)
        try DurableFile.write(Data(key.rawRepresentation.base64EncodedString().utf8), to: path)
        return key
    }

    /// The keys, decoded once.
    public struct Keys: Sendable {
        public let signing: Curve25519.Signing.PrivateKey
        public let seal: Curve25519.KeyAgreement.PrivateKey
        public let manager: Curve25519.Signing.PublicKey
    }

    public struct Outdated: Error, CustomStringConvertible {
        public var description: String {
            "the identity in the state dir is from before zone channel v2 (no seal key or zone id); remove the state dir and enroll again"
        }
    }

    /// The decoded keys; throws ``Outdated`` for an identity without a seal key.
    public func keys() throws -> Keys {
        guard let sealText = sealPrivateKey, let sealRaw = Data(base64Encoded: sealText), let signingRaw = Data(base64Encoded: privateKey),
            let manager = KlevrAPI.Keys.signing(managerPublicKey), zoneId != nil
        else { throw Outdated() }
        return Keys(
            signing: try Curve25519.Signing.PrivateKey(rawRepresentation: signingRaw),
            seal: try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: sealRaw), manager: manager)
    }

    /// The values a script must never see in its output (masked by the executor).
    /// (Each also as JSON escapes `/`, the form it has in `identity.json`.)
    public var secrets: [String] {
        let values = [credential, privateKey] + (sealPrivateKey.map { [$0] } ?? [])
        return values + values.filter { $0.contains("/") }.map { $0.replacingOccurrences(of: "/", with: "\\/") }
    }
}

extension AgentIdentity: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The identity without its credential, private key or zone secret, for anything that prints it.
    public var description: String { "AgentIdentity(agent: \(agentId), zone: \(zone), manager: \(managerURL))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["description": description], displayStyle: .struct) }
}
