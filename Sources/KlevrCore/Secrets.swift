import Crypto
import Foundation

/// Generation and hashing of the secrets Klevr hands out (tokens, credentials, enrollment keys).
///
/// Every secret has 256 bits of randomness and a short prefix that says what it is
/// (`klt_` API token, `kls_` session, `kla_` agent credential, `kle_` enrollment key), so a leaked
/// value can be recognised by scanners. Only the SHA-256 of a secret is ever stored: the values
/// are random, so a slow hash adds nothing.
public enum Secrets {
    /// The kinds of secret, with their prefixes.
    public enum Kind: String, Sendable {
        case apiToken = "klt_"
        case session = "kls_"
        case agentCredential = "kla_"
        case enrollKey = "kle_"
    }

    /// A new random secret of the given kind.
    public static func generate(_ kind: Kind) -> String {
        kind.rawValue + randomToken(bytes: 32)
    }

    /// `bytes` random bytes from the system's CSPRNG, base64url without padding.
    public static func randomToken(bytes: Int) -> String {
        let key = SymmetricKey(size: SymmetricKeySize(bitCount: bytes * 8))
        let data = key.withUnsafeBytes { Data($0) }
        return data.base64URLEncodedString()
    }

    /// A random password of letters and digits (about 5.95 bits each), easy to paste and never starting
    /// with `-` (which command lines would read as an option).
    public static func randomPassword(length: Int = 22) -> String {
        let alphabet = Array("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<length).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
    }

    /// The hex SHA-256 of a secret, the only form in which it is stored.
    public static func hash(_ secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// A new random identifier (lowercase UUID).
    public static func newID() -> String {
        UUID().uuidString.lowercased()
    }
}

extension Data {
    /// Base64url without padding (RFC 4648 §5).
    public func base64URLEncodedString() -> String {
        base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
