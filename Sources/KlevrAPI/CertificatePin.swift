import Crypto
import Foundation

/// The pin of a TLS server certificate, kubeadm-style: `sha256:` followed by the 64 lowercase hex
/// digits of the SHA-256 of the certificate's DER-encoded SubjectPublicKeyInfo (its public key with the
/// key's algorithm, as `openssl x509 -pubkey -noout | openssl pkey -pubin -outform der` prints it).
///
/// It names the key, not the certificate: a certificate renewed with the same key keeps its pin.
public struct CertificatePin: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The canonical text, `sha256:<64 lowercase hex digits>`.
    public let value: String

    /// The pin of a DER-encoded SubjectPublicKeyInfo.
    public init(subjectPublicKeyInfo der: some DataProtocol) {
        value = "sha256:" + SHA256.hash(data: Data(der)).map { String(format: "%02x", $0) }.joined()
    }

    /// Parses `sha256:<64 hex digits>` (upper or lower case); nil for anything else.
    public init?(_ text: String) {
        let prefix = "sha256:"
        guard text.count == prefix.count + 64, text.lowercased().hasPrefix(prefix) else { return nil }
        let hex = text.dropFirst(prefix.count).lowercased()
        guard hex.allSatisfy({ ("0"..."9").contains($0) || ("a"..."f").contains($0) }) else { return nil }
        value = prefix + hex
    }

    /// What a pin must look like, for error messages.
    public static let format = "sha256:<64 hex digits>"

    public var description: String { value }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let pin = CertificatePin(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a certificate pin (\(Self.format))"))
        }
        self = pin
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
}
