import Crypto
import Foundation

/// Why a sealed secret could not be opened or sealed.
public enum SecretBoxError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The value is too short or does not start with a known format byte.
    case malformed(String)
    /// The value was sealed under a key the box does not hold (the id is in hex).
    case unknownKey(id: String)
    /// The ciphertext, its header or its context does not authenticate: it was altered, or belongs elsewhere.
    case authenticationFailed
    /// The cryptographic library refused to seal.
    case sealFailed(String)

    /// What went wrong.
    public var description: String {
        switch self {
        case .malformed(let detail): "the sealed secret is malformed: \(detail)"
        case .unknownKey(let id): "the secret was sealed under master key \(id), which is not loaded (was the key file replaced without rotating?)"
        case .authenticationFailed: "the sealed secret does not authenticate: it was altered or belongs to another record"
        case .sealFailed(let detail): "cannot seal the secret: \(detail)"
        }
    }
}

/// Seals secrets at rest with AES-256-GCM under a ``MasterKey``, and re-seals them when the key rotates.
///
/// A sealed value is bytes:
///
/// | bytes | content |
/// |---|---|
/// | 1 | format version, `0x01` |
/// | 8 | the ``MasterKey/id`` of the key that sealed it |
/// | 12 | a random nonce |
/// | n | the ciphertext |
/// | 16 | the GCM tag |
///
/// The header (version and key id) and a caller-given `context` (for instance `credential:<id>`) are
/// authenticated as associated data, so a value copied to another record, or with its header edited, does not
/// open. Random 96-bit nonces are safe for far more values than a fleet manager ever seals under one key.
///
/// Rotation: a box holds the current key and the previous ones; ``open(_:context:)`` picks the key by the id in
/// the value, ``seal(_:context:)`` always uses the current key, and ``reseal(_:context:)`` moves a value to it.
public struct SecretBox: Sendable {
    /// The format version byte written by this code.
    public static let formatVersion: UInt8 = 1
    static let headerLength = 1 + 8
    static let nonceLength = 12
    static let tagLength = 16

    /// The key new values are sealed with.
    public let current: MasterKey
    private let keys: [[UInt8]: MasterKey]

    /// A box sealing with `current` and opening values sealed under it or any of `previous`.
    public init(current: MasterKey, previous: [MasterKey] = []) {
        self.current = current
        var keys: [[UInt8]: MasterKey] = [:]
        for key in previous { keys[key.id] = key }
        keys[current.id] = current
        self.keys = keys
    }

    /// Seals `plaintext` under the current key, bound to `context`.
    public func seal(_ plaintext: some DataProtocol, context: String) throws(SecretBoxError) -> Data {
        try Self.seal(plaintext, context: context, key: current)
    }

    /// Opens a value sealed under any key of the box, checking that it was sealed for `context`.
    public func open(_ sealed: Data, context: String) throws(SecretBoxError) -> Data {
        let id = try Self.keyID(of: sealed)
        guard let key = keys[id] else { throw .unknownKey(id: id.map { String(format: "%02x", $0) }.joined()) }
        return try Self.open(sealed, context: context, key: key)
    }

    /// Whether a value is sealed under an older key than the current one.
    public func needsReseal(_ sealed: Data) throws(SecretBoxError) -> Bool {
        try Self.keyID(of: sealed) != current.id
    }

    /// The value sealed under the current key: opened with whichever key sealed it and sealed again (a value
    /// already under the current key is returned unchanged).
    public func reseal(_ sealed: Data, context: String) throws(SecretBoxError) -> Data {
        guard try needsReseal(sealed) else { return sealed }
        return try seal(open(sealed, context: context), context: context)
    }

    /// Re-encrypts one value from `old` to `new`: the step `klevr manager rotate-master-key` applies to every
    /// stored secret.
    public static func rotate(_ sealed: Data, context: String, from old: MasterKey, to new: MasterKey) throws(SecretBoxError) -> Data {
        try seal(open(sealed, context: context, key: old), context: context, key: new)
    }

    /// The id of the key a value was sealed under.
    public static func keyID(of sealed: Data) throws(SecretBoxError) -> [UInt8] {
        let bytes = [UInt8](sealed)
        guard bytes.count >= headerLength + nonceLength + tagLength else {
            throw .malformed("\(bytes.count) bytes is shorter than the \(headerLength + nonceLength + tagLength)-byte minimum")
        }
        guard bytes[0] == formatVersion else { throw .malformed("unknown format version \(bytes[0])") }
        return Array(bytes[1..<headerLength])
    }

    static func seal(_ plaintext: some DataProtocol, context: String, key: MasterKey) throws(SecretBoxError) -> Data {
        let header = Data([formatVersion] + key.id)
        do {
            let box = try AES.GCM.seal(plaintext, using: key.key, nonce: AES.GCM.Nonce(), authenticating: header + Data(context.utf8))
            return header + box.nonce.withUnsafeBytes { Data($0) } + box.ciphertext + box.tag
        } catch {
            throw .sealFailed("\(error)")
        }
    }

    static func open(_ sealed: Data, context: String, key: MasterKey) throws(SecretBoxError) -> Data {
        let id = try keyID(of: sealed)
        guard id == key.id else { throw .unknownKey(id: id.map { String(format: "%02x", $0) }.joined()) }
        let bytes = [UInt8](sealed)
        let header = Data(bytes[0..<headerLength])
        let nonceEnd = headerLength + nonceLength
        let tagStart = bytes.count - tagLength
        do {
            let box = try AES.GCM.SealedBox(
                nonce: AES.GCM.Nonce(data: bytes[headerLength..<nonceEnd]), ciphertext: bytes[nonceEnd..<tagStart], tag: bytes[tagStart...])
            return try AES.GCM.open(box, using: key.key, authenticating: header + Data(context.utf8))
        } catch {
            throw .authenticationFailed
        }
    }
}
