import Crypto
import Foundation
import KlevrCore

// The cryptography of the zone channel (docs/security.md):
//
// - every party has an Ed25519 signing key; agents also have an X25519 key that things are sealed to;
// - the manager signs what the zone must trust (membership, run envelopes, cancels, acknowledgements for
//   relayed members), a member signs what it says (peer requests and answers, its reports);
// - run parameters and enrollments are sealed (X25519 + HKDF-SHA256 + AES-GCM) so that a relay carries
//   only ciphertext.

/// Bytes sealed to one X25519 public key: an ephemeral key agreement, HKDF-SHA256 and AES-256-GCM.
/// `epk` is the sender's ephemeral X25519 public key (base64, 32 bytes), `ct` the AES-GCM nonce,
/// ciphertext and tag (base64). Generated from `openapi.yaml`.
public typealias SealedBox = Components.Schemas.SealedBox

public enum Sealing {
    public struct OpenFailed: Error, CustomStringConvertible {
        public var description: String { "the sealed data does not open with this key" }
    }

    /// Seals `plaintext` to `recipient`; `context` names the purpose (a box sealed for one purpose does not
    /// open for another).
    public static func seal(_ plaintext: Data, to recipient: Curve25519.KeyAgreement.PublicKey, context: String) throws -> SealedBox {
        let ephemeral = Curve25519.KeyAgreement.PrivateKey()
        let key = try derive(
            secret: ephemeral.sharedSecretFromKeyAgreement(with: recipient), epk: ephemeral.publicKey.rawRepresentation,
            recipient: recipient.rawRepresentation, context: context)
        let sealed = try AES.GCM.seal(plaintext, using: key)
        guard let combined = sealed.combined else { throw OpenFailed() }
        return SealedBox(epk: ephemeral.publicKey.rawRepresentation.base64EncodedString(), ct: combined.base64EncodedString())
    }

    /// Opens a box sealed to `key` for `context`.
    public static func open(_ box: SealedBox, with key: Curve25519.KeyAgreement.PrivateKey, context: String) throws -> Data {
        guard let epkData = Data(base64Encoded: box.epk), let epk = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: epkData),
            let combined = Data(base64Encoded: box.ct), let sealed = try? AES.GCM.SealedBox(combined: combined)
        else { throw OpenFailed() }
        do {
            let symmetric = try derive(
                secret: key.sharedSecretFromKeyAgreement(with: epk), epk: epkData, recipient: key.publicKey.rawRepresentation, context: context)
            return try AES.GCM.open(sealed, using: symmetric)
        } catch {
            throw OpenFailed()
        }
    }

    private static func derive(secret: SharedSecret, epk: Data, recipient: Data, context: String) throws -> SymmetricKey {
        secret.hkdfDerivedSymmetricKey(using: SHA256.self, salt: epk + recipient, sharedInfo: Data("klevr-seal-v1:\(context)".utf8), outputByteCount: 32)
    }
}

/// A payload (JSON bytes) with the Ed25519 signature of whoever says it: `signer` (an agent id, or
/// `manager`), `payload` (the signed bytes, base64) and `signature` (Ed25519 over `domain \n payload
/// bytes`, base64). Carrying the bytes as they were signed means nobody on the way needs to re-encode
/// them the same way. Generated from `openapi.yaml`.
public typealias SignedBlob = Components.Schemas.SignedBlob

extension SignedBlob {
    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// Signs `value`'s JSON for `domain`.
    public static func sign(_ value: some Encodable, domain: String, signer: String, key: Curve25519.Signing.PrivateKey) throws -> SignedBlob {
        let bytes = try JSONEncoder().encode(value)
        let signature = try key.signature(for: Data("\(domain)\n".utf8) + bytes)
        return SignedBlob(signer: signer, payload: bytes.base64EncodedString(), signature: signature.base64EncodedString())
    }

    /// The payload, decoded, when the signature verifies with `key` for `domain`.
    public func open<Value: Decodable>(_ type: Value.Type, domain: String, key: Curve25519.Signing.PublicKey) throws -> Value {
        guard let bytes = Data(base64Encoded: payload), let signatureData = Data(base64Encoded: signature),
            key.isValidSignature(signatureData, for: Data("\(domain)\n".utf8) + bytes)
        else { throw Invalid(description: "the signature of \(signer.prefix(64)) does not verify") }
        do {
            return try JSONDecoder().decode(Value.self, from: bytes)
        } catch {
            throw Invalid(description: "the signed payload is not a \(Value.self)")
        }
    }

    /// What a holder of this blob calls it: base64url SHA-256 of the payload.
    public var digest: String { Data(SHA256.hash(data: Data(payload.utf8))).base64URLEncodedString() }

    /// The domains things are signed for.
    public enum Domain {
        public static let membership = "klevr-membership-v1"
        public static let report = "klevr-report-v1"
        public static let acks = "klevr-acks-v1"
        public static let enrollAnswer = "klevr-enroll-answer-v1"
        public static let managerSealKey = "klevr-manager-seal-key-v1"
    }
}

/// Public keys from their base64 text.
public enum Keys {
    public static func signing(_ base64: String) -> Curve25519.Signing.PublicKey? {
        guard let data = Data(base64Encoded: base64), data.count == 32 else { return nil }
        return try? Curve25519.Signing.PublicKey(rawRepresentation: data)
    }

    public static func agreement(_ base64: String) -> Curve25519.KeyAgreement.PublicKey? {
        guard let data = Data(base64Encoded: base64), data.count == 32 else { return nil }
        return try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: data)
    }

    /// The pin of a manager signing key, as it travels with enrollment keys: base64url SHA-256 of the raw key.
    public static func pin(of key: Curve25519.Signing.PublicKey) -> String {
        Data(SHA256.hash(data: key.rawRepresentation)).base64URLEncodedString()
    }

    /// The manager's X25519 key, derived from its signing key so that nothing else needs storing.
    public static func managerSealKey(from signing: Curve25519.Signing.PrivateKey) -> Curve25519.KeyAgreement.PrivateKey {
        let derived = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: signing.rawRepresentation), info: Data("klevr-manager-seal-v1".utf8), outputByteCount: 32)
        let raw = derived.withUnsafeBytes { Data($0) }
        // Any 32 bytes are a valid X25519 private key.
        return (try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: raw)) ?? Curve25519.KeyAgreement.PrivateKey()
    }

    /// The pin part of an enrollment key `kle_<secret>.<pin>`, if it has one.
    public static func pin(inEnrollKey key: String) -> String? {
        guard let dot = key.lastIndex(of: "."), key.index(after: dot) < key.endIndex else { return nil }
        return String(key[key.index(after: dot)...])
    }
}

/// The signature every peer request carries in `X-Klevr-Peer`, made with the sending agent's own key:
/// `v2.<sender>.<zone id>.<time>.<nonce>.<body digest>.<signature>` (digest and signature base64url).
///
/// The signature covers method, path, sender, zone, time (the sender's estimate of the manager's clock),
/// nonce and the SHA-256 of the body, so a receiver checks it before reading the body and refuses replays
/// with a nonce cache over the freshness window.
public struct PeerStamp: Sendable, Equatable {
    public static let header = "X-Klevr-Peer"
    public static let answerHeader = "X-Klevr-Peer-Answer"
    /// How far a request's time may be from the receiver's estimate of the manager's clock.
    public static let window: Int64 = 60_000
    /// The longest header value accepted.
    public static let maxHeaderLength = 512

    public var sender: String
    public var zone: String
    public var time: Int64
    public var nonce: String
    public var digest: String
    public var signature: String

    public init(sender: String, zone: String, time: Int64, nonce: String, digest: String, signature: String) {
        self.sender = sender
        self.zone = zone
        self.time = time
        self.nonce = nonce
        self.digest = digest
        self.signature = signature
    }

    public static func digest(of body: Data) -> String {
        Data(SHA256.hash(data: body)).base64URLEncodedString()
    }

    static func message(method: String, path: String, sender: String, zone: String, time: Int64, nonce: String, digest: String) -> Data {
        Data("klevr-peer-v2\n\(method)\n\(path)\n\(sender)\n\(zone)\n\(time)\n\(nonce)\n\(digest)".utf8)
    }

    /// A signed stamp for a request.
    public static func sign(
        method: String, path: String, body: Data, sender: String, zone: String, time: Int64, key: Curve25519.Signing.PrivateKey
    ) throws -> PeerStamp {
        let nonce = Secrets.randomToken(bytes: 16)
        let digest = digest(of: body)
        let signature = try key.signature(for: message(method: method, path: path, sender: sender, zone: zone, time: time, nonce: nonce, digest: digest))
        return PeerStamp(sender: sender, zone: zone, time: time, nonce: nonce, digest: digest, signature: Data(signature).base64URLEncodedString())
    }

    public var headerValue: String { "v2.\(sender).\(zone).\(time).\(nonce).\(digest).\(signature)" }

    /// Parses a header value; nil when malformed.
    public init?(header: String) {
        guard header.utf8.count <= Self.maxHeaderLength else { return nil }
        let parts = header.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 7, parts[0] == "v2", Validation.isValidID(parts[1]), Validation.isValidID(parts[2]), let time = Int64(parts[3]),
            (16...64).contains(parts[4].count), parts[5].count == 43, !parts[6].isEmpty
        else { return nil }
        self.init(sender: parts[1], zone: parts[2], time: time, nonce: parts[4], digest: parts[5], signature: parts[6])
    }

    /// Whether the signature is the sender's (with its key) over this request's method and path.
    public func verifies(method: String, path: String, key: Curve25519.Signing.PublicKey) -> Bool {
        guard let signatureData = Data(base64URLEncoded: signature) else { return false }
        return key.isValidSignature(
            signatureData, for: Self.message(method: method, path: path, sender: sender, zone: zone, time: time, nonce: nonce, digest: digest))
    }

    // MARK: - Answers

    static func answerMessage(requestNonce: String, sender: String, status: Int, digest: String) -> Data {
        Data("klevr-peer-answer-v2\n\(requestNonce)\n\(sender)\n\(status)\n\(digest)".utf8)
    }

    /// The `X-Klevr-Peer-Answer` value for an answer to the request with `requestNonce`:
    /// `v2.<sender>.<digest>.<signature>`. Binding the request's nonce makes an answer fresh without clocks.
    public static func signAnswer(requestNonce: String, status: Int, body: Data, sender: String, key: Curve25519.Signing.PrivateKey) throws -> String {
        let digest = digest(of: body)
        let signature = try key.signature(for: answerMessage(requestNonce: requestNonce, sender: sender, status: status, digest: digest))
        return "v2.\(sender).\(digest).\(Data(signature).base64URLEncodedString())"
    }

    /// The agent id that signed an answer, when the header verifies with the key `keyOf` gives for it.
    public static func verifyAnswer(
        header: String, requestNonce: String, status: Int, body: Data, keyOf: (String) -> Curve25519.Signing.PublicKey?
    ) -> String? {
        let parts = header.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard header.utf8.count <= maxHeaderLength, parts.count == 4, parts[0] == "v2", Validation.isValidID(parts[1]),
            parts[2] == digest(of: body), let key = keyOf(parts[1]), let signatureData = Data(base64URLEncoded: parts[3]),
            key.isValidSignature(signatureData, for: answerMessage(requestNonce: requestNonce, sender: parts[1], status: status, digest: parts[2]))
        else { return nil }
        return parts[1]
    }
}

extension Data {
    /// Decodes base64url with or without padding.
    public init?(base64URLEncoded text: String) {
        var base = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base.count % 4 != 0 { base += "=" }
        self.init(base64Encoded: base)
    }
}

/// Nonces seen within the freshness window, per sender, bounded: when full, the oldest are dropped and
/// their sender's requests no newer than them are refused, so a replay is never accepted because its
/// nonce was forgotten, and a member flooding the cache raises no other member's floor.
public struct NonceCache: Sendable {
    private var seen: Set<String> = []
    private var order: [(key: String, sender: String, time: Int64)] = []
    private var head = 0
    /// Per sender, requests at or before this time are refused (raised when its nonces are evicted early).
    private var floors: [String: Int64] = [:]
    public let capacity: Int
    public let window: Int64
    /// How far ahead of the receiver's estimate a request's time may be (clocks of one zone agree within
    /// a round trip, since they all estimate the manager's).
    public let ahead: Int64

    public init(capacity: Int = 200_000, window: Int64 = PeerStamp.window, ahead: Int64 = 10_000) {
        self.capacity = capacity
        self.window = window
        self.ahead = ahead
    }

    /// Records `sender`'s nonce of a request at `time`; false when it was seen (a replay) or is too old or
    /// too far ahead to judge. No arithmetic touches the caller's `time`.
    public mutating func admit(_ nonce: String, sender: String, time: Int64, now: Int64) -> Bool {
        let key = sender + "." + nonce
        guard time >= now - window, time <= now + ahead, time > floors[sender, default: .min], !seen.contains(key) else { return false }
        // Forget what is out of the window anyway.
        while head < order.count, order[head].time < now - window {
            seen.remove(order[head].key)
            head += 1
        }
        while seen.count >= capacity, head < order.count {
            let evicted = order[head]
            floors[evicted.sender] = max(floors[evicted.sender, default: .min], evicted.time)
            seen.remove(evicted.key)
            head += 1
        }
        if head > 4096 && head * 2 > order.count {
            order.removeFirst(head)
            head = 0
            // Floors older than the window are implied by it.
            floors = floors.filter { $0.value >= now - window }
        }
        seen.insert(key)
        order.append((key, sender, time))
        return true
    }

    public var count: Int { seen.count }
}

extension EnrollRequest {
    /// An enrollment request for an agent with these keys, signed with its private key (proof of
    /// possession); `time` is the manager's time as the agent knows it.
    public static func proving(
        zone: String, enrollKey: String, key: Curve25519.Signing.PrivateKey, sealKey: Curve25519.KeyAgreement.PublicKey, facts: HostFacts,
        peerAddress: String? = nil, time: Int64
    ) throws -> EnrollRequest {
        var request = EnrollRequest(
            zone: zone, enrollKey: enrollKey, publicKey: key.publicKey.rawRepresentation.base64EncodedString(), facts: facts,
            peerAddress: peerAddress, sealKey: sealKey.rawRepresentation.base64EncodedString(), proof: "", proofTime: time)
        request.proof = try key.signature(for: request.statement()).base64EncodedString()
        return request
    }
}
