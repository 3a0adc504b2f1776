import Foundation
import Hummingbird
import KlevrCore
import KlevrStore
import Logging

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
public struct KlevrRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var principal: Principal?
    /// The client's address (recorded with the changes it makes).
    public var remoteAddress: String?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.principal = nil
        self.remoteAddress = source.channel.remoteAddress?.ipAddress
    }

    /// Who is making this request, as recorded in the events of the changes it makes.
    public var actor: EventActor {
        switch principal {
        case .user(let user, .session):
            EventActor(kind: .user, id: user.id, name: user.username, address: remoteAddress)
        case .user(let user, .apiToken(let tokenID)):
            // A token acts for its owner: the id is the token's, the name its owner's.
            EventActor(kind: .token, id: tokenID, name: user.username, address: remoteAddress)
        case .agent(let agent):
            EventActor(kind: .agent, id: agent.id, name: agent.hostname, address: remoteAddress)
        case nil:
            EventActor(kind: .system, id: "", name: "anonymous", address: remoteAddress)
        }
    }

    /// Bodies are read by `JSONBody` with per-route limits; this bounds everything else.
    public var maxUploadSize: Int { 8 << 20 }
}
