import Foundation
import Logging
import Hummingbird
import KlevrAPI
import KlevrCore
import KlevrStore

extension Manager {
    func addAuthRoutes(to router: Router<KlevrRequestContext>) {
        router.post("/api/v1/auth/login") { request, _ in
            let body = try await JSONBody.decode(LoginRequest.self, from: request)
            let now = Clock.nowMillis()
            if await throttle.isBlocked(body.username, now: now) {
                throw Problem(.tooManyRequests, type: "rate-limited", detail: "too many failed logins; try again in a few minutes")
            }
            guard let user = try await store.user(named: body.username),
                try await passwords.verify(body.password, hash: user.passwordHash)
            else {
                await throttle.recordFailure(body.username, now: now)
                throw Problem(.unauthorized, type: "login-failed", detail: "wrong user name or password")
            }
            await throttle.reset(body.username)
            let token = Secrets.generate(.session)
            let csrf = Secrets.randomToken(bytes: 24)
            try await store.createSession(
                userID: user.id, tokenHash: Secrets.hash(token), csrf: csrf, now: now, expiresAt: now + config.sessionSeconds * 1000)
            let cookie = Cookie(
                name: Authenticator.sessionCookie, value: token, maxAge: Int(config.sessionSeconds), path: "/",
                secure: config.servesClientsOverTLS, httpOnly: true,
                sameSite: .strict)
            return try JSONBody.response(
                LoginResponse(user: Self.view(user), csrfToken: csrf), headers: [.setCookie: cookie.description])
        }
        router.post("/api/v1/auth/logout") { request, context in
            _ = try context.requireUser()
            if let cookie = request.cookies[Authenticator.sessionCookie]?.value {
                try await store.deleteSession(tokenHash: Secrets.hash(cookie))
            }
            let expired = Cookie(
                name: Authenticator.sessionCookie, value: "", maxAge: 0, path: "/", secure: config.servesClientsOverTLS, httpOnly: true,
                sameSite: .strict)
            return Response(status: .noContent, headers: [.setCookie: expired.description])
        }
        router.get("/api/v1/me") { _, context in
            try JSONBody.response(Self.view(try context.requireUser()))
        }
        router.get("/api/v1/users") { _, context in
            _ = try context.requireUser(.admin)
            return try JSONBody.response(Page(items: try await store.users().map(Self.view), nextCursor: nil))
        }
        router.post("/api/v1/users") { request, context in
            _ = try context.requireUser(.admin)
            let body = try await JSONBody.decode(UserCreateRequest.self, from: request)
            var errors: [ProblemDocument.FieldError] = []
            if !Validation.isValidName(body.username) {
                errors.append(.init(field: "username", message: "use 1-63 lowercase letters, digits or '-'"))
            }
            if !Validation.isValidPassword(body.password) {
                errors.append(.init(field: "password", message: "must be 12 to 72 characters long"))
            }
            if !errors.isEmpty { throw Problem.invalid(errors) }
            let user = try await store.createUser(
                username: body.username, passwordHash: try await passwords.hash(body.password), role: body.role, now: Clock.nowMillis())
            return try JSONBody.response(Self.view(user), status: .created)
        }
        router.get("/api/v1/tokens") { _, context in
            let user = try context.requireUser()
            let tokens = try await store.tokens(userID: user.id).map {
                TokenView(id: $0.id, name: $0.name, createdAt: $0.createdAt, lastUsedAt: $0.lastUsedAt)
            }
            return try JSONBody.response(Page(items: tokens, nextCursor: nil))
        }
        router.post("/api/v1/tokens") { request, context in
            let user = try context.requireUser()
            let body = try await JSONBody.decode(TokenCreateRequest.self, from: request)
            guard (1...100).contains(body.name.unicodeScalars.count) else { throw Problem.invalid("name", "must be 1 to 100 characters") }
            let token = Secrets.generate(.apiToken)
            let now = Clock.nowMillis()
            let id = try await store.createToken(userID: user.id, name: body.name, tokenHash: Secrets.hash(token), now: now)
            return try JSONBody.response(TokenCreated(id: id, name: body.name, token: token, createdAt: now), status: .created)
        }
        router.delete("/api/v1/tokens/{id}") { _, context in
            let user = try context.requireUser()
            try await store.deleteToken(id: try Self.id(context), userID: user.id)
            return Response(status: .noContent)
        }
    }

    static func view(_ user: UserRecord) -> UserView {
        UserView(id: user.id, username: user.username, role: user.role, createdAt: user.createdAt)
    }
}
