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

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.principal = nil
    }

    /// Bodies are read by `JSONBody` with per-route limits; this bounds everything else.
    public var maxUploadSize: Int { 8 << 20 }
}
