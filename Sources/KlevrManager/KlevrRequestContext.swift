import Foundation
import Hummingbird
import KlevrCore
import KlevrStore
import Logging

/// Who made a request.
public enum Principal: Sendable {
    /// A user, through a session cookie or an API token.
    case user(UserRecord, viaSession: Bool)
    /// An enrolled agent, through its credential.
    case agent(AgentRecord)
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
        case .user(let user, let viaSession):
            EventActor(kind: viaSession ? .user : .token, id: user.id, name: user.username, address: remoteAddress)
        case .agent(let agent):
            EventActor(kind: .agent, id: agent.id, name: agent.hostname, address: remoteAddress)
        case nil:
            EventActor(kind: .system, id: "", name: "anonymous", address: remoteAddress)
        }
    }

    /// Bodies are read by `JSONBody` with per-route limits; this bounds everything else.
    public var maxUploadSize: Int { 8 << 20 }
}
