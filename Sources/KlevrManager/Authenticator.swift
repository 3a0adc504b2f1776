import Foundation
import Logging
import HTTPTypes
import Hummingbird
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

    /// Routes that answer without credentials: health, login and enrollment (which needs a zone key).
    static let publicRoutes: Set<String> = [
        "GET /healthz", "GET /readyz", "POST /api/v1/auth/login", "POST /api/v1/agent/enroll", "POST /api/v1/agent/enroll-sealed", "GET /api/v1/agent/hello",
    ]

    let store: Store

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if Self.isPublic(request) { return try await next(request, context) }
        var context = context
        let now = Clock.nowMillis()
        if let authorization = request.headers[.authorization] {
            guard authorization.hasPrefix("Bearer ") else { throw Problem.unauthorized }
            let token = String(authorization.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces)
            let hash = Secrets.hash(token)
            if token.hasPrefix(Secrets.Kind.agentCredential.rawValue), let agent = try await store.agent(credentialHash: hash) {
                context.principal = .agent(agent)
            } else if token.hasPrefix(Secrets.Kind.apiToken.rawValue), let user = try await store.tokenUser(tokenHash: hash, now: now) {
                context.principal = .user(user, viaSession: false)
            } else {
                throw Problem.unauthorized
            }
        } else if let cookie = request.cookies[Self.sessionCookie]?.value {
            if let (user, csrf) = try await store.session(tokenHash: Secrets.hash(cookie), now: now) {
                let safe = request.method == .get || request.method == .head
                let sent = request.headers.first { $0.name.canonicalName == Self.csrfHeader }?.value
                if !safe && sent != csrf {
                    throw Problem.forbidden("cookie-authenticated writes need the X-Klevr-CSRF header from the login answer")
                }
                context.principal = .user(user, viaSession: true)
            }
        }
        if context.principal == nil {
            var problem = Problem.unauthorized
            problem.headers[.wwwAuthenticate] = "Bearer"
            throw problem
        }
        return try await next(request, context)
    }

    static func isPublic(_ request: Request) -> Bool {
        publicRoutes.contains("\(request.method.rawValue) \(request.uri.path)")
    }
}

extension KlevrRequestContext {
    /// The calling user, if their role is at least `role`.
    /// - Throws: 403 for agents and for users below the role.
    func requireUser(_ role: Role = .viewer) throws -> UserRecord {
        guard case .user(let user, _) = principal else { throw Problem.forbidden("this route is for users, not agents") }
        guard user.role >= role else {
            throw Problem.forbidden("this needs the \(role.rawValue) role; you are \(user.role.rawValue)")
        }
        return user
    }

    /// The calling agent. - Throws: 403 for users.
    func requireAgent() throws -> AgentRecord {
        guard case .agent(let agent) = principal else { throw Problem.forbidden("this route is for agents") }
        return agent
    }
}
