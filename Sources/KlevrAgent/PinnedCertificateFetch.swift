import Foundation
import KlevrAPI
import NIOCore
import NIOPosix
import NIOSSL

/// One TLS handshake with the manager to learn its certificate and check it against a pin.
///
/// AsyncHTTPClient takes trust roots but no verification callback, so a pin is checked here, with
/// NIOSSL's custom verification: the handshake completes only when the presented certificate's public
/// key has the pin. That certificate then becomes the client's only trust root
/// (``ServerTrust/tlsConfiguration()``).
enum PinnedCertificateFetch {
    /// The certificate `server` presents, when its public key has `pin`.
    /// - Throws: ``ServerTrust/PinMismatch`` or ``ServerTrust/Unreachable``.
    static func fetch(server: String, pin: CertificatePin, timeout: Duration) async throws -> NIOSSLCertificate {
        guard let url = URL(string: server), url.scheme?.lowercased() == "https", let host = url.host, !host.isEmpty else {
            throw ServerTrust.InvalidOptions(description: "a pinned certificate needs an https:// manager URL, not \(server)")
        }
        let port = url.port ?? 443
        let bareHost = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        // SNI carries names only, never an address.
        let serverName = (try? SocketAddress(ipAddress: bareHost, port: 0)) == nil ? bareHost : nil
        let amount = TimeAmount.nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)

        var configuration = TLSConfiguration.makeClientConfiguration()
        // The callback below replaces the verification; this only makes NIOSSL ask for the certificate.
        configuration.certificateVerification = .noHostnameVerification
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw ServerTrust.Unreachable(server: server, reason: "cannot set up TLS: \(error)")
        }
        let group = MultiThreadedEventLoopGroup.singleton
        let found = group.next().makePromise(of: NIOSSLCertificate.self)
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(amount)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = try NIOSSLClientHandler(context: context, serverHostname: serverName, customVerificationCallback: { chain, verdict in
                        guard let leaf = chain.first, let seen = try? ServerTrust.pin(of: leaf) else {
                            found.fail(ServerTrust.Unreachable(server: server, reason: "the server presented no readable certificate"))
                            verdict.succeed(.failed)
                            return
                        }
                        if seen == pin {
                            found.succeed(leaf)
                            verdict.succeed(.certificateVerified)
                        } else {
                            found.fail(ServerTrust.PinMismatch(server: server, expected: pin, seen: seen))
                            verdict.succeed(.failed)
                        }
                    })
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: bareHost, port: port).get()
        } catch {
            found.fail(error)
            throw ServerTrust.Unreachable(server: server, reason: "\(error)")
        }
        // Whichever comes first decides; a promise ignores later completions.
        channel.closeFuture.whenComplete { _ in
            found.fail(ServerTrust.Unreachable(server: server, reason: "the connection closed before a certificate was presented (is it serving HTTPS?)"))
        }
        let timer = channel.eventLoop.scheduleTask(in: amount) {
            found.fail(ServerTrust.Unreachable(server: server, reason: "no TLS handshake within \(timeout)"))
        }
        defer {
            timer.cancel()
            channel.close(promise: nil)
        }
        return try await found.futureResult.get()
    }
}
