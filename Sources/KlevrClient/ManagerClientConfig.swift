import Foundation
import KlevrAPI
import NIOSSL

/// How a client reaches the manager's API: where, as whom, how its certificate is verified, and how
/// long it waits. Built once (by the CLI from its saved login, by a benchmark, by the agent) and
/// handed to ``ManagerClient``.
public struct ManagerClientConfig: Sendable {
    /// The manager's URL as given, without trailing slashes (`https://manager.example:8090`).
    public let server: String
    /// The parsed ``server``.
    public let serverURL: URL
    /// What every request carries to authenticate; nil for the public routes only.
    public var credential: ManagerCredential?
    /// How an `https://` manager is verified; nil for the system trust store (or plain http).
    public let trust: ServerTrust?
    /// The TLS settings ``trust`` makes, computed once so that an unusable choice fails here.
    public let tlsConfiguration: TLSConfiguration?
    /// How long a request may wait for the head of its answer (a streamed body may last longer).
    public var timeout: Duration
    /// How long a connection to the manager may take to open.
    public var connectTimeout: Duration
    /// Connections kept open to the manager at once; more requests wait for one.
    public var maxConnections: Int

    /// A URL that is not `http://` or `https://` with a host.
    public struct InvalidServerURL: Error, CustomStringConvertible, Sendable {
        public var server: String
        public var description: String { "'\(server)' is not a manager URL: give http://HOST:PORT or https://HOST:PORT" }
    }

    /// - Throws: ``InvalidServerURL`` for a URL that is not http(s) with a host;
    ///   ``ServerTrust/InvalidOptions`` for a trust choice that cannot be used (a pin whose certificate
    ///   was not fetched yet, unreadable PEM).
    public init(
        server: String, credential: ManagerCredential? = nil, trust: ServerTrust? = nil, timeout: Duration = .seconds(30),
        connectTimeout: Duration = .seconds(10), maxConnections: Int = 8
    ) throws {
        var base = server
        while base.hasSuffix("/") { base.removeLast() }
        guard let url = URL(string: base), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = url.host, !host.isEmpty, url.query == nil, url.fragment == nil
        else { throw InvalidServerURL(server: server) }
        self.server = base
        self.serverURL = url
        self.credential = credential
        self.trust = trust
        self.tlsConfiguration = try trust?.tlsConfiguration()
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self.maxConnections = max(1, maxConnections)
    }

    /// The same manager, reached with another credential.
    public func authenticated(as credential: ManagerCredential?) -> ManagerClientConfig {
        var copy = self
        copy.credential = credential
        return copy
    }
}

/// What a request carries to say who calls.
public enum ManagerCredential: Sendable, Equatable {
    /// An API token (`klt_…`) or an agent credential (`kla_…`), sent as `Authorization: Bearer`.
    case bearer(String)
    /// The session of a login: its cookie (`klevr_session=…`) and the CSRF token that writes must send.
    case session(cookie: String, csrf: String)
}
