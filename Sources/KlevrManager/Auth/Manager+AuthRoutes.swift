import Foundation
import Logging
import Hummingbird
import KlevrAPI
import KlevrCore
import KlevrStore

extension Manager {
    func addAuthRoutes(to router: Router<KlevrRequestContext>) {
        router.post("/api/v1/auth/login") { request, context in
            let body = try await JSONBody.decode(LoginRequest.self, from: request, limit: JSONBody.loginLimit)
            let now = Clock.nowMillis()
            let client = LoginThrottleState.key(forAddress: context.remoteAddress?.ipAddress)
            try await admitLogin(client: client, now: now)
            guard let user = try await verifiedUser(body),
                try await passwords.verify(body.password, hash: user.passwordHash)
            else {
                throw Problem(.unauthorized, type: "login-failed", detail: "wrong user name or password")
            }
            await throttle.recordSuccess(client)
            guard user.disabledAt == nil else {
                throw Problem(.forbidden, type: "user-disabled", detail: "user '\(user.username)' is disabled; ask an admin to enable it")
            }
            let token = Secrets.generate(.session)
            let csrf = Secrets.randomToken(bytes: 24)
            try await store.createSession(
                userID: user.id, tokenHash: Secrets.hash(token), csrf: csrf, now: now, expiresAt: now + config.sessionSeconds * 1000,
                actor: EventActor(kind: .user, id: user.id, name: user.username, address: context.remoteAddress?.ipAddress))
            let cookie = Cookie(
                name: Authenticator.sessionCookie, value: token, maxAge: Int(config.sessionSeconds), path: "/",
                secure: config.servesClientsOverTLS, httpOnly: true,
                sameSite: .strict)
            return try JSONBody.response(
                LoginResponse(user: Self.view(user), csrfToken: csrf, passwordChangeRequired: user.mustChangePassword),
                headers: [.setCookie: cookie.description])
        }
        router.post("/api/v1/auth/logout") { request, context in
            _ = try context.requireUser()
            if let cookie = request.cookies[Authenticator.sessionCookie]?.value {
                try await store.deleteSession(tokenHash: Secrets.hash(cookie), now: Clock.nowMillis(), actor: context.actor)
            }
            let expired = Cookie(
                name: Authenticator.sessionCookie, value: "", maxAge: 0, path: "/", secure: config.servesClientsOverTLS, httpOnly: true,
                sameSite: .strict)
            return Response(status: .noContent, headers: [.setCookie: expired.description])
        }
        router.get("/api/v1/me") { _, context in
            try JSONBody.response(Self.view(try context.requireUser()))
        }
        router.post("/api/v1/me/password") { request, context in
            let caller = try context.requireCaller()
            let body = try await JSONBody.decode(PasswordChangeRequest.self, from: request)
            if let problem = PasswordRules.problem(body.newPassword) { throw Problem.invalid("newPassword", problem) }
            if body.newPassword == body.currentPassword { throw Problem.invalid("newPassword", "must differ from the current password") }
            guard try await passwords.verify(body.currentPassword, hash: caller.user.passwordHash) else {
                throw Problem(.forbidden, type: "wrong-password", detail: "the current password is wrong")
            }
            // The session that made the change stays; every other session and every API token of the user ends.
            let keep: String? = if case .session(let hash) = caller.credential { hash } else { nil }
            try await store.changePassword(
                userID: caller.user.id, passwordHash: try await passwords.hash(body.newPassword), keepingSession: keep, now: Clock.nowMillis(),
                actor: context.actor)
            return Response(status: .noContent)
        }
        addUserRoutes(to: router)
        addTokenRoutes(to: router)
    }

    static func view(_ user: UserRecord) -> UserView {
        UserView(
            id: user.id, username: user.username, role: user.role, createdAt: user.createdAt, disabledAt: user.disabledAt,
            passwordChangeRequired: user.mustChangePassword, passwordChangedAt: user.passwordChangedAt)
    }
}
