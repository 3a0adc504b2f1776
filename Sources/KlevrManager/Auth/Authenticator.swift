import Foundation
import Logging
import HTTPTypes
import Hummingbird
import KlevrAPI
import KlevrCore
import KlevrStore

/// Establishes who is calling: an agent credential or API token (`Authorization: Bearer`), or a session
/// cookie (with the CSRF header on writes). Only the public routes are reachable without one; they
/// ignore credentials altogether, so a stale token or cookie never stops a login, an enrollment or a
/// health check.
struct Authenticator: RouterMiddleware {
    typealias Context = KlevrRequestContext

    static let sessionCookie = "klevr_session"
    static let csrfHeader = "x-klevr-csrf"

    let store: Store
    /// The document's public operations (`x-klevr-role: public`).
    let publicOperations: [OpenAPIDocument.Operation]

    init(store: Store, operations: [OpenAPIDocument.Operation]) {
        self.store = store
        self.publicOperations = operations.filter { $0.role == "public" }
    }

    func isPublic(_ request: Request) -> Bool {
        let method = request.method.rawValue == "HEAD" ? "GET" : request.method.rawValue
        return publicOperations.contains { $0.matches(method: method, path: request.uri.path) }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if isPublic(request) { return try await next(request, context) }
        var context = context
        let now = Clock.nowMillis()
        if let authorization = request.headers[.authorization] {
            guard authorization.hasPrefix("Bearer ") else { throw Problem.unauthorized }
            let token = String(authorization.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces)
            let hash = Secrets.hash(token)
            if token.hasPrefix(Secrets.Kind.agentCredential.rawValue), let agent = try await store.agent(credentialHash: hash) {
                context.principal = .agent(agent)
            } else if token.hasPrefix(Secrets.Kind.apiToken.rawValue), let (user, tokenID) = try await store.tokenUser(tokenHash: hash, now: now) {
                context.principal = .user(user, via: .apiToken(id: tokenID))
            } else {
                throw Problem.unauthorized
            }
        } else if let cookie = request.cookies[Self.sessionCookie]?.value {
            let sessionHash = Secrets.hash(cookie)
            if let (user, csrf) = try await store.session(tokenHash: sessionHash, now: now) {
                let safe = request.method == .get || request.method == .head
                let sent = request.headers.first { $0.name.canonicalName == Self.csrfHeader }?.value
                if !safe && sent != csrf {
                    throw Problem.forbidden("cookie-authenticated writes need the X-Klevr-CSRF header from the login answer")
                }
                context.principal = .user(user, via: .session(hash: sessionHash))
            }
        }
        // Whether this caller may call this operation is the Authorizer's decision (roles from the document).
        return try await next(request, context)
    }
}

extension KlevrRequestContext {
    /// The calling user, if their role is at least `role`. Routes do not pass a role: the ``Authorizer``
    /// enforces each operation's role from the document before the route runs.
    /// - Throws: 403 for agents and for users below the role.
    func requireUser(_ role: Role = .viewer) throws -> UserRecord {
        guard case .user(let user, _) = principal else { throw Problem.forbidden("this route is for users, not agents") }
        guard user.role >= role else {
            throw Problem.forbidden("this needs the \(role.rawValue) role; you are \(user.role.rawValue)")
        }
        return user
    }

    /// The calling user and the credential they used, if their role is at least `role`.
    /// - Throws: 403 for agents and for users below the role.
    func requireCaller(_ role: Role = .viewer) throws -> Caller {
        let user = try requireUser(role)
        guard case .user(_, let credential) = principal else { throw Problem.forbidden("this route is for users, not agents") }
        return Caller(user: user, credential: credential)
    }

    /// The calling agent. - Throws: 403 for users.
    func requireAgent() throws -> AgentRecord {
        guard case .agent(let agent) = principal else { throw Problem.forbidden("this route is for agents") }
        return agent
    }
}
