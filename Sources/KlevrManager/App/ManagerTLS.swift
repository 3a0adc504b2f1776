import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import KlevrAPI
import NIOSSL

/// The manager's TLS certificate and key, loaded and checked once at start (`--tls-cert`, `--tls-key`).
public struct ManagerTLS: Sendable {
    /// The server configuration built from the files.
    public let configuration: TLSConfiguration
    /// The pin of the served (first) certificate, which agents and the CLI can give as `--ca-pin`.
    public let pin: CertificatePin

    /// A certificate or key file that cannot be used; the message names the file and the reason.
    public struct LoadError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// Reads a PEM certificate chain (the served certificate first) and its PEM private key.
    /// - Throws: ``LoadError`` when a file is missing or unreadable, holds no certificate, or the key
    ///   does not belong to the certificate.
    public static func load(certificatePath: String, keyPath: String) throws(LoadError) -> ManagerTLS {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
        } catch {
            throw LoadError(description: "cannot read the TLS certificate \(certificatePath): \(error) (a PEM file is expected)")
        }
        guard let leaf = chain.first else {
            throw LoadError(description: "the TLS certificate file \(certificatePath) holds no PEM certificate")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        } catch {
            throw LoadError(description: "cannot read the TLS private key \(keyPath): \(error) (an unencrypted PEM key is expected)")
        }
        let pin: CertificatePin
        do {
            pin = CertificatePin(subjectPublicKeyInfo: try leaf.extractPublicKey().toSPKIBytes())
        } catch {
            throw LoadError(description: "cannot read the public key of the TLS certificate \(certificatePath): \(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        // NIOSSL would also accept TLS 1.0 and 1.1, which no client of the manager needs.
        configuration.minimumTLSVersion = .tlsv12
        do {
            // Builds the context once so that a key that does not match the certificate stops the start
            // here, with the file names, instead of failing every handshake later.
            _ = try NIOSSLContext(configuration: configuration)
        } catch {
            throw LoadError(description: "the TLS key \(keyPath) cannot serve the certificate \(certificatePath) (does the key belong to it?): \(error)")
        }
        return ManagerTLS(configuration: configuration, pin: pin)
    }

    /// The Hummingbird server: HTTP/1.1 inside TLS.
    func serverBuilder(http: HTTP1Channel.Configuration = .init()) -> HTTPServerBuilder {
        let configuration = self.configuration
        return HTTPServerBuilder { responder in
            try TLSChannel(HTTP1Channel(responder: responder, configuration: http), tlsConfiguration: configuration)
        }
    }
}

extension ManagerTLS: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The pin only: never the key material the configuration holds.
    public var description: String { "ManagerTLS(pin: \(pin))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["pin": pin], displayStyle: .struct) }
}
