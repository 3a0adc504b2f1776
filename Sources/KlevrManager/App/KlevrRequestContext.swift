import Foundation
import Hummingbird
import KlevrCore
import KlevrStore
import Logging
import NIOCore

/// Who made a request.
public enum Principal: Sendable {
    /// A user, through a session cookie or an API token.
    case user(UserRecord, via: UserCredential)
    /// An enrolled agent, through its credential.
    case agent(AgentRecord)
}

/// How a user authenticated: which session or which API token acted for them.
public enum UserCredential: Sendable, Equatable {
    /// A session cookie, by the hash of its value.
    case session(hash: String)
    /// An API token, by its id.
    case apiToken(id: String)
}

/// The user behind a request and the credential they used: who acts, through what.
public struct Caller: Sendable {
    public var user: UserRecord
    public var credential: UserCredential
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

    /// Who is making this request, as recorded in the events of the changes it makes.
    public var actor: EventActor {
        let address = remoteAddress?.ipAddress
        switch principal {
        case .user(let user, .session):
            return EventActor(kind: .user, id: user.id, name: user.username, address: address)
        case .user(let user, .apiToken(let tokenID)):
            // A token acts for its owner: the id is the token's, the name its owner's.
            return EventActor(kind: .token, id: tokenID, name: user.username, address: address)
        case .agent(let agent):
            return EventActor(kind: .agent, id: agent.id, name: agent.hostname, address: address)
        case nil:
            return EventActor(kind: .system, id: "", name: "anonymous", address: address)
        }
    }

    /// Bodies are read by `JSONBody` with per-route limits; this bounds everything else.
    public var maxUploadSize: Int { 8 << 20 }
}
