import Foundation
import KlevrAPI
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// TLS handshakes with the manager to learn its certificate and check it against a pin.
///
/// AsyncHTTPClient takes trust roots but no verification callback, so a pin is checked here, with
/// NIOSSL's custom verification: the handshake is accepted only when the presented certificate's
/// public key has the pin. That certificate then becomes the client's only trust root
/// (``ServerTrust/tlsConfiguration()``), which a second handshake confirms works as AsyncHTTPClient
/// will use it.
enum PinnedCertificateFetch {
    /// The certificate `server` presents, when its public key has `pin`.
    /// - Throws: ``ServerTrust/PinMismatch`` or ``ServerTrust/Unreachable``.
    static func fetch(server: String, pin: CertificatePin, timeout: Duration) async throws -> NIOSSLCertificate {
        var configuration = TLSConfiguration.makeClientConfiguration()
        // The callback below replaces the verification; this only makes NIOSSL ask for the certificate.
        configuration.certificateVerification = .noHostnameVerification
        let leaf = try await handshake(server: server, configuration: configuration, timeout: timeout) { found in
            { chain, verdict in
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
            }
        }
        guard let leaf else { throw ServerTrust.Unreachable(server: server, reason: "the server presented no certificate") }
        return leaf
    }

    /// Completes one handshake with `configuration` as the client's whole verification.
    /// - Throws: ``ServerTrust/PinUnusable`` when the server's certificate is not accepted that way,
    ///   ``ServerTrust/Unreachable`` when no handshake took place.
    static func confirm(server: String, pin: CertificatePin, configuration: TLSConfiguration, timeout: Duration) async throws {
        do {
            _ = try await handshake(server: server, configuration: configuration, timeout: timeout, verification: nil)
        } catch let error as NIOSSLError {
            throw ServerTrust.PinUnusable(server: server, pin: pin, reason: "\(error)")
        }
    }

    /// One handshake; the promise is completed by `verification` (given the promise) or, without it,
    /// with the certificate-less success of the handshake (an empty certificate list is never used).
    private static func handshake(
        server: String, configuration: TLSConfiguration, timeout: Duration,
        verification: (@Sendable (EventLoopPromise<NIOSSLCertificate>) -> NIOSSLCustomVerificationCallback)?
    ) async throws -> NIOSSLCertificate? {
        guard let url = URL(string: server), url.scheme?.lowercased() == "https", let host = url.host, !host.isEmpty else {
            throw ServerTrust.InvalidOptions(description: "a pinned certificate needs an https:// manager URL, not \(server)")
        }
        let port = url.port ?? 443
        let bareHost = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        // SNI carries names only, never an address.
        let serverName = (try? SocketAddress(ipAddress: bareHost, port: 0)) == nil ? bareHost : nil
        let amount = TimeAmount.nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw ServerTrust.Unreachable(server: server, reason: "cannot set up TLS: \(error)")
        }
        let group = MultiThreadedEventLoopGroup.singleton
        let found = group.next().makePromise(of: NIOSSLCertificate.self)
        let handshakeDone = group.next().makePromise(of: Void.self)
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(amount)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler =
                        if let verification {
                            try NIOSSLClientHandler(context: context, serverHostname: serverName, customVerificationCallback: verification(found))
                        } else {
                            try NIOSSLClientHandler(context: context, serverHostname: serverName)
                        }
                    try channel.pipeline.syncOperations.addHandler(handler)
                    try channel.pipeline.syncOperations.addHandler(HandshakeWatcher(done: handshakeDone))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: bareHost, port: port).get()
        } catch {
            found.fail(error)
            handshakeDone.fail(error)
            throw ServerTrust.Unreachable(server: server, reason: "\(error)")
        }
        // Whichever comes first decides; a promise ignores later completions.
        let closed = ServerTrust.Unreachable(server: server, reason: "the connection closed before the TLS handshake ended (is it serving HTTPS?)")
        channel.closeFuture.whenComplete { _ in
            found.fail(closed)
            handshakeDone.fail(closed)
        }
        let late = ServerTrust.Unreachable(server: server, reason: "no TLS handshake within \(timeout)")
        let timer = channel.eventLoop.scheduleTask(in: amount) {
            found.fail(late)
            handshakeDone.fail(late)
        }
        defer {
            timer.cancel()
            channel.close(promise: nil)
        }
        if verification != nil { return try await found.futureResult.get() }
        try await handshakeDone.futureResult.get()
        found.fail(CancellationError())
        return nil
    }

    /// Completes a promise when the TLS handshake ends, or fails it with the handshake's error.
    private final class HandshakeWatcher: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let done: EventLoopPromise<Void>

        init(done: EventLoopPromise<Void>) { self.done = done }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let event = event as? TLSUserEvent, case .handshakeCompleted = event { done.succeed() }
            context.fireUserInboundEventTriggered(event)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            done.fail(error)
            context.fireErrorCaught(error)
        }
    }
}
