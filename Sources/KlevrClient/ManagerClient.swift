import AsyncHTTPClient
import Foundation
import KlevrAPI
import NIOCore
import OpenAPIAsyncHTTPClient
import OpenAPIRuntime

/// Makes the generated ``KlevrAPI/Client`` for a ``ManagerClientConfig``: the AsyncHTTPClient transport
/// with the config's TLS verification and timeouts, the credential on every request, and every answer
/// outside 2xx turned into a ``ManagerRefusal`` (so callers read `.ok`, `.created` or `.noContent` and
/// handle one error type).
public enum ManagerClient {
    /// Runs `body` with a client for `config`; the HTTP client under it is shut down afterwards.
    public static func with<Result>(_ config: ManagerClientConfig, _ body: (Client) async throws -> Result) async throws -> Result {
        try await withHTTPClient(for: config) { http in try await body(make(config, http: http)) }
    }

    /// Runs `body` with an HTTP client made for `config` (TLS, connect timeout, pool), shut down
    /// afterwards; ``make(_:http:)`` builds clients on it, for example with different credentials.
    public static func withHTTPClient<Result>(for config: ManagerClientConfig, _ body: (HTTPClient) async throws -> Result) async throws
        -> Result
    {
        let http = makeHTTPClient(for: config)
        let result: Result
        do {
            result = try await body(http)
        } catch {
            try? await http.shutdown()
            throw error
        }
        try? await http.shutdown()
        return result
    }

    /// An HTTP client made for `config`; the caller shuts it down (AsyncHTTPClient requires it).
    public static func makeHTTPClient(for config: ManagerClientConfig) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.tlsConfiguration = config.tlsConfiguration
        // No read timeout: a followed event stream is quiet for up to 15 s between keep-alive comments,
        // and a long poll for longer; each request's deadline (`timeout`) bounds the wait for its answer.
        configuration.timeout = .init(connect: .init(config.connectTimeout))
        // Idle connections are dropped after 20 s, before the manager closes them at 30 s: a request sent on
        // one the manager is closing at that moment fails (remoteConnectionClosed) instead of being sent.
        configuration.connectionPool = .init(idleTimeout: .seconds(20), concurrentHTTP1ConnectionsPerHostSoftLimit: config.maxConnections)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// A generated client for `config` over `http`, which the caller owns.
    public static func make(_ config: ManagerClientConfig, http: HTTPClient) -> Client {
        make(config, transport: AsyncHTTPClientTransport(configuration: .init(client: http, timeout: .init(config.timeout))))
    }

    /// A generated client for `config` over any transport (tests use one without sockets).
    static func make(_ config: ManagerClientConfig, transport: any ClientTransport) -> Client {
        var middlewares: [any ClientMiddleware] = [RefusalMiddleware()]
        if let credential = config.credential { middlewares.append(CredentialMiddleware(credential: credential)) }
        return Client(serverURL: config.serverURL, transport: transport, middlewares: middlewares)
    }

    /// The error behind the generated client's wrapping: it reports every failure (a refusal, a
    /// transport or TLS error, an undecodable answer) as a `ClientError` around the cause.
    public static func cause(of error: any Error) -> any Error {
        var current = error
        while let wrapped = current as? ClientError { current = wrapped.underlyingError }
        return current
    }
}

extension TimeAmount {
    /// The same span as a NIO time amount (nanoseconds, saturating).
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        self = .nanoseconds(overflow ? .max : product.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue)
    }
}
