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

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.principal = nil
    }

    /// Bodies are read by `JSONBody` with per-route limits; this bounds everything else.
    public var maxUploadSize: Int { 8 << 20 }
}
