import Foundation
import KlevrAPI
import NIOSSL

/// How an agent, the CLI or a benchmark verifies the manager's TLS certificate (docs/security.md, "Transport").
///
/// Kept with the agent's state (`manager-tls.json`) and in the CLI's saved login, so that later starts
/// and commands verify the same way without the flags being given again.
public enum ServerTrust: Sendable, Equatable {
    /// The system's trust store; the certificate must name the host of the URL.
    case system
    /// Only the certificates of this PEM bundle (the file's content, so moving the file changes
    /// nothing); the certificate must name the host of the URL.
    case certificateAuthority(pem: String)
    /// Only a certificate whose public key has this pin (kubeadm-style), whatever names it carries.
    /// `certificate` is the DER of the certificate last found to match, which is the one trusted;
    /// nil until ``fetchingPinnedCertificate(server:timeout:)`` has found it.
    case pinned(CertificatePin, certificate: [UInt8]?)

    /// Bad `--ca` or `--ca-pin` input, or a pinned certificate that is not there yet.
    public struct InvalidOptions: Error, CustomStringConvertible, Sendable {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// The manager presented a certificate whose public key does not have the pin.
    public struct PinMismatch: Error, CustomStringConvertible, Sendable {
        public var server: String
        public var expected: CertificatePin
        public var seen: CertificatePin
        public var description: String {
            "refusing to talk to \(server): its TLS certificate's public key has pin \(seen), not the expected \(expected) "
                + "(another server answers there, or the manager's key changed: check the pin the manager printed at start)"
        }
    }

    /// The manager's certificate has the pin but cannot be its own trust root: it was issued by a CA
    /// rather than self-signed. Verify it with `--ca` or the system trust store instead.
    public struct PinUnusable: Error, CustomStringConvertible, Sendable {
        public var server: String
        public var pin: CertificatePin
        public var reason: String
        public var description: String {
            "the TLS certificate of \(server) has the pin \(pin) but cannot be trusted on its own (a pin needs a self-signed "
                + "certificate; this one is probably issued by a CA): give --ca with the issuing CA instead, or rely on the system trust store (\(reason))"
        }
    }

    /// The manager's certificate could not be fetched to check it against the pin (unreachable, no
    /// TLS, no answer in time). Worth retrying, unlike ``PinMismatch``.
    public struct Unreachable: Error, CustomStringConvertible, Sendable {
        public var server: String
        public var reason: String
        public var description: String { "cannot check the TLS certificate of \(server): \(reason)" }
    }

    /// The choice the options make: `--ca FILE` or `--ca-pin PIN` (not both); nil when neither is given.
    public static func fromOptions(caFile: String?, pin: String?) throws(InvalidOptions) -> ServerTrust? {
        switch (caFile, pin) {
        case (nil, nil):
            return nil
        case (.some, .some):
            throw InvalidOptions(description: "give --ca or --ca-pin, not both")
        case (nil, .some(let text)):
            guard let pin = CertificatePin(text) else {
                throw InvalidOptions(description: "--ca-pin must be \(CertificatePin.format), as the manager prints it at start")
            }
            return .pinned(pin, certificate: nil)
        case (.some(let path), nil):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw InvalidOptions(description: "cannot read the --ca file \(path)")
            }
            let pem = String(decoding: data, as: UTF8.self)
            let certificates = (try? NIOSSLCertificate.fromPEMBytes(Array(data))) ?? []
            guard !certificates.isEmpty else { throw InvalidOptions(description: "the --ca file \(path) holds no PEM certificate") }
            return .certificateAuthority(pem: pem)
        }
    }

    /// The pin of a certificate's public key.
    public static func pin(of certificate: NIOSSLCertificate) throws -> CertificatePin {
        CertificatePin(subjectPublicKeyInfo: try certificate.extractPublicKey().toSPKIBytes())
    }

    /// For a pin: connects to `server` (an `https://` URL) once and keeps the certificate it presents
    /// when its public key has the pin. Other choices are returned as they are.
    /// - Throws: ``PinMismatch`` for a certificate with another key (never connects on), ``PinUnusable``
    ///   for a matching certificate that is not self-signed, ``Unreachable`` when no certificate could be
    ///   fetched.
    public func fetchingPinnedCertificate(server: String, timeout: Duration = .seconds(10)) async throws -> ServerTrust {
        guard case .pinned(let pin, _) = self else { return self }
        let leaf = try await PinnedCertificateFetch.fetch(server: server, pin: pin, timeout: timeout)
        let trust = ServerTrust.pinned(pin, certificate: try leaf.toDERBytes())
        try await PinnedCertificateFetch.confirm(server: server, pin: pin, configuration: try trust.tlsConfiguration(), timeout: timeout)
        return trust
    }

    /// The client TLS configuration for this choice.
    ///
    /// A pinned certificate becomes the only trust root, without a host name check: the server must
    /// present that very certificate, or one issued with its key (which only the manager holds).
    /// - Throws: ``InvalidOptions`` for a pin whose certificate was not fetched, or unreadable PEM.
    public func tlsConfiguration() throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        switch self {
        case .system:
            break
        case .certificateAuthority(let pem):
            let certificates = (try? NIOSSLCertificate.fromPEMBytes(Array(pem.utf8))) ?? []
            guard !certificates.isEmpty else { throw InvalidOptions(description: "the saved CA holds no PEM certificate") }
            configuration.trustRoots = .certificates(certificates)
        case .pinned(let pin, let der):
            guard let der, let certificate = try? NIOSSLCertificate(bytes: der, format: .der) else {
                throw InvalidOptions(description: "the certificate with pin \(pin) has not been fetched from the manager yet")
            }
            configuration.trustRoots = .certificates([certificate])
            configuration.certificateVerification = .noHostnameVerification
        }
        return configuration
    }

    /// What the choice is, for logs and messages (no certificate bytes).
    public var summary: String {
        switch self {
        case .system: "the system trust store"
        case .certificateAuthority: "the given CA"
        case .pinned(let pin, _): "the pinned key \(pin)"
        }
    }
}

extension ServerTrust: Codable {
    private enum CodingKeys: String, CodingKey { case kind, pem, pin, certificate }
    private enum Kind: String, Codable { case system, ca, pin }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(Kind.self, forKey: .kind) {
        case .system:
            self = .system
        case .ca:
            self = .certificateAuthority(pem: try container.decode(String.self, forKey: .pem))
        case .pin:
            let certificate = try container.decodeIfPresent(String.self, forKey: .certificate)
            let der = try certificate.map { text in
                guard let data = Data(base64Encoded: text) else {
                    throw DecodingError.dataCorruptedError(forKey: .certificate, in: container, debugDescription: "not base64")
                }
                return [UInt8](data)
            }
            self = .pinned(try container.decode(CertificatePin.self, forKey: .pin), certificate: der)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .system:
            try container.encode(Kind.system, forKey: .kind)
        case .certificateAuthority(let pem):
            try container.encode(Kind.ca, forKey: .kind)
            try container.encode(pem, forKey: .pem)
        case .pinned(let pin, let der):
            try container.encode(Kind.pin, forKey: .kind)
            try container.encode(pin, forKey: .pin)
            try container.encodeIfPresent(der.map { Data($0).base64EncodedString() }, forKey: .certificate)
        }
    }
}
