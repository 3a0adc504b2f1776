import Foundation
import Hummingbird
import KlevrCore
import KlevrStore
import Logging
import NIOCore

/// Who made a request.
public enum Principal: Sendable {
    /// A user, through a session cookie or an API token.
    case user(UserRecord, viaSession: Bool)
    /// An enrolled agent, through its credential.
    case agent(AgentRecord)
}

/// The request context of the manager: Hummingbird's core plus the authenticated principal.
public struct KlevrRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public var principal: Principal?
    /// The client's address (the peer of the TCP connection; nil in in-process tests).
    public var remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.principal = nil
        self.remoteAddress = source.channel.remoteAddress
    }

    /// Bodies are read by `JSONBody` with per-route limits; this bounds everything else.
    public var maxUploadSize: Int { 8 << 20 }
}
