import Hummingbird
import KlevrAPI
import KlevrCore
import KlevrStore

/// Sessions: logging in and out, the calling user, and their own password.
extension ManagerAPI {
    /// Checks a user name and password (throttled per client address, see ``LoginThrottleState``), then
    /// opens a session: its cookie (HttpOnly, SameSite=Strict, Secure when clients reach the manager over
    /// TLS) and the CSRF token that cookie-authenticated writes must send back.
    func login(_ input: Operations.Login.Input) async throws -> Operations.Login.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("the body must be JSON") }
        let address = try context.remoteAddress?.ipAddress
        let now = Clock.nowMillis()
        let client = LoginThrottleState.key(forAddress: address)
        try await manager.admitLogin(client: client, now: now)
        guard let user = try await manager.verifiedUser(username: body.username, password: body.password),
            try await manager.passwords.verify(body.password, hash: user.passwordHash)
        else {
            throw Problem(.unauthorized, type: "login-failed", detail: "wrong user name or password")
        }
        await manager.throttle.recordSuccess(client)
        guard user.disabledAt == nil else {
            throw Problem(.forbidden, type: "user-disabled", detail: "user '\(user.username)' is disabled; ask an admin to enable it")
        }
        let token = Secrets.generate(.session)
        let csrf = Secrets.randomToken(bytes: 24)
        try await store.createSession(
            userID: user.id, tokenHash: Secrets.hash(token), csrf: csrf, now: now, expiresAt: now + config.sessionSeconds * 1000,
            actor: EventActor(kind: .user, id: user.id, name: user.username, address: address))
        return .ok(
            .init(
                headers: .init(setCookie: sessionCookie(token, maxAge: Int(config.sessionSeconds)).description),
                body: .json(.init(user: Self.view(user), csrfToken: csrf, passwordChangeRequired: user.mustChangePassword))))
    }

    /// Ends the session the call was made with (a call made with an API token ends no session) and
    /// clears the cookie either way.
    func logout(_ input: Operations.Logout.Input) async throws -> Operations.Logout.Output {
        let context = try context
        let caller = try context.requireCaller()
        if case .session(let hash) = caller.credential {
            try await store.deleteSession(tokenHash: hash, now: Clock.nowMillis(), actor: context.actor)
        }
        return .noContent(.init(headers: .init(setCookie: sessionCookie("", maxAge: 0).description)))
    }

    /// The cookie's session as the login answered it, so a console page opened later can send its CSRF token.
    func currentSession(_ input: Operations.CurrentSession.Input) async throws -> Operations.CurrentSession.Output {
        let caller = try context.requireCaller()
        guard case .session(let hash) = caller.credential, let (user, csrf) = try await store.session(tokenHash: hash, now: Clock.nowMillis())
        else { throw Problem.notFound("this call was made with an API token, which has no session") }
        return .ok(.init(body: .json(.init(user: Self.view(user), csrfToken: csrf, passwordChangeRequired: user.mustChangePassword))))
    }

    func me(_ input: Operations.Me.Input) async throws -> Operations.Me.Output {
        .ok(.init(body: .json(Self.view(try context.requireUser()))))
    }

    /// Changes the caller's own password. The session that made the change stays; every other session
    /// and every API token of the user ends.
    func changePassword(_ input: Operations.ChangePassword.Input) async throws -> Operations.ChangePassword.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("the body must be JSON") }
        let context = try context
        let caller = try context.requireCaller()
        if let problem = PasswordRules.problem(body.newPassword) { throw Problem.invalid("newPassword", problem) }
        if body.newPassword == body.currentPassword { throw Problem.invalid("newPassword", "must differ from the current password") }
        guard try await manager.passwords.verify(body.currentPassword, hash: caller.user.passwordHash) else {
            throw Problem(.forbidden, type: "wrong-password", detail: "the current password is wrong")
        }
        let keep: String? = if case .session(let hash) = caller.credential { hash } else { nil }
        try await store.changePassword(
            userID: caller.user.id, passwordHash: try await manager.passwords.hash(body.newPassword), keepingSession: keep,
            now: Clock.nowMillis(), actor: context.actor)
        return .noContent(.init())
    }

    /// The session cookie with `value` (empty and `maxAge` 0 to clear it).
    func sessionCookie(_ value: String, maxAge: Int) -> Cookie {
        Cookie(
            name: Authenticator.sessionCookie, value: value, maxAge: maxAge, path: "/", secure: config.servesClientsOverTLS, httpOnly: true,
            sameSite: .strict)
    }

    /// A user as the API shows it: never a secret.
    static func view(_ user: UserRecord) -> Components.Schemas.User {
        .init(
            id: user.id, username: user.username, role: .init(user.role), createdAt: user.createdAt, disabledAt: user.disabledAt,
            passwordChangeRequired: user.mustChangePassword, passwordChangedAt: user.passwordChangedAt)
    }
}

extension Components.Schemas.Role {
    init(_ role: Role) {
        switch role {
        case .viewer: self = .viewer
        case .operator_: self = ._operator
        case .admin: self = .admin
        }
    }
}

extension Role {
    init(_ role: Components.Schemas.Role) {
        switch role {
        case .viewer: self = .viewer
        case ._operator: self = .operator_
        case .admin: self = .admin
        }
    }
}
