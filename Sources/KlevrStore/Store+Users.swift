import Foundation
import KlevrCore
import SQLKit

// Users, their sessions and their API tokens.
//
// Every change happens in one `database.transaction { db in … }`, so that the event recording it can be
// written in the same transaction. A disabled user has no sessions and no tokens: disabling deletes them,
// and every lookup of a credential also checks `disabled_at`, so nothing survives even a race.
extension Store {
    // MARK: - Users

    /// The number of users (zero means the first admin must be created).
    public func userCount() async throws -> Int {
        try await database.read { db in
            let row = try await db.raw("SELECT COUNT(*) AS n FROM users").first()
            return Int(try row?.decode(column: "n", as: Int64.self) ?? 0)
        }
    }

    /// Creates a user. - Throws: ``StoreError/conflict(_:)`` when the name is taken.
    public func createUser(
        username: String, passwordHash: String, role: Role, mustChangePassword: Bool = false, now: Int64, actor: EventActor = .system
    ) async throws -> UserRecord {
        let user = UserRecord(
            id: Secrets.newID(), username: username, passwordHash: passwordHash, role: role, createdAt: now, mustChangePassword: mustChangePassword)
        try await change { db, events in
            if try await db.raw("SELECT id FROM users WHERE username = \(bind: username)").first() != nil {
                throw StoreError.conflict("a user named '\(username)' already exists")
            }
            try await db.raw(
                """
                INSERT INTO users (id, username, password_hash, role, created_at, must_change_password)
                VALUES (\(bind: user.id), \(bind: username), \(bind: passwordHash), \(bind: role.rawValue), \(bind: now),
                        \(unsafeRaw: mustChangePassword ? "1" : "0"))
                """
            ).run()
            events.append(.userCreated, actor: actor, subject: user.id, detail: ["username": username, "role": role.rawValue], at: now)
        }
        return user
    }

    public func user(named username: String) async throws -> UserRecord? {
        try await database.read { db in
            try await db.raw("SELECT * FROM users WHERE username = \(bind: username)").first().map(Self.user(from:))
        }
    }

    public func user(id: String) async throws -> UserRecord? {
        try await database.read { db in
            try await db.raw("SELECT * FROM users WHERE id = \(bind: id)").first().map(Self.user(from:))
        }
    }

    public func users() async throws -> [UserRecord] {
        try await database.read { db in
            try await db.raw("SELECT * FROM users ORDER BY created_at, id").all().map(Self.user(from:))
        }
    }

    /// Disables or enables a user. Disabling deletes the user's sessions and tokens in the same transaction;
    /// enabling brings none of them back.
    /// - Throws: ``StoreError/notFound(_:)``; ``StoreError/conflict(_:)`` when this would leave no enabled admin.
    public func setUserDisabled(id: String, disabled: Bool, now: Int64, actor: EventActor) async throws -> UserRecord {
        let lock = database.isPostgres
        return try await change { db, events in
            var user = try await Self.existingUser(db, id: id)
            if disabled {
                if user.role == .admin && user.disabledAt == nil {
                    try await Self.requireAnotherEnabledAdmin(db, besides: id, lock: lock, doing: "disable")
                }
                if user.disabledAt == nil {
                    user.disabledAt = now
                    try await db.raw("UPDATE users SET disabled_at = \(bind: now) WHERE id = \(bind: id)").run()
                    events.append(.userDisabled, actor: actor, subject: id, detail: ["username": user.username], at: now)
                }
                try await Self.endCredentials(db, userID: id, keepingSession: nil)
            } else if user.disabledAt != nil {
                user.disabledAt = nil
                try await db.raw("UPDATE users SET disabled_at = NULL WHERE id = \(bind: id)").run()
                events.append(.userEnabled, actor: actor, subject: id, detail: ["username": user.username], at: now)
            }
            return user
        }
    }

    /// Sets a user's role. - Throws: ``StoreError/notFound(_:)``; ``StoreError/conflict(_:)`` when this would
    /// leave no enabled admin.
    public func setUserRole(id: String, role: Role, now: Int64, actor: EventActor) async throws -> UserRecord {
        let lock = database.isPostgres
        return try await change { db, events in
            var user = try await Self.existingUser(db, id: id)
            if user.role != role {
                events.append(
                    .userUpdated, actor: actor, subject: id, detail: ["username": user.username, "from": user.role.rawValue, "role": role.rawValue],
                    at: now)
            }
            if user.role == .admin && role != .admin && user.disabledAt == nil {
                try await Self.requireAnotherEnabledAdmin(db, besides: id, lock: lock, doing: "demote")
            }
            user.role = role
            try await db.raw("UPDATE users SET role = \(bind: role.rawValue) WHERE id = \(bind: id)").run()
            return user
        }
    }

    /// Deletes a user with their sessions and tokens; what they created (tasks) stays, under their name.
    /// - Throws: ``StoreError/notFound(_:)``; ``StoreError/conflict(_:)`` for the last enabled admin.
    @discardableResult
    public func deleteUser(id: String, now: Int64, actor: EventActor) async throws -> UserRecord {
        let lock = database.isPostgres
        return try await change { db, events in
            let user = try await Self.existingUser(db, id: id)
            if user.role == .admin && user.disabledAt == nil {
                try await Self.requireAnotherEnabledAdmin(db, besides: id, lock: lock, doing: "delete")
            }
            try await Self.endCredentials(db, userID: id, keepingSession: nil)
            try await db.raw("DELETE FROM users WHERE id = \(bind: id)").run()
            events.append(.userDeleted, actor: actor, subject: id, detail: ["username": user.username], at: now)
            return user
        }
    }

    /// Replaces a user's password hash and clears the must-change flag. Ends every session of the user but
    /// `keepingSession` (the one that made the change, if it was a session) and all of their API tokens.
    /// - Throws: ``StoreError/notFound(_:)``.
    public func changePassword(userID: String, passwordHash: String, keepingSession: String?, now: Int64, actor: EventActor) async throws {
        try await change { db, events in
            let user = try await Self.existingUser(db, id: userID)
            events.append(.userPasswordChanged, actor: actor, subject: userID, detail: ["username": user.username], at: now)
            try await db.raw(
                """
                UPDATE users SET password_hash = \(bind: passwordHash), must_change_password = 0, password_changed_at = \(bind: now)
                WHERE id = \(bind: userID)
                """
            ).run()
            try await Self.endCredentials(db, userID: userID, keepingSession: keepingSession)
        }
    }

    static func user(from row: any SQLRow) throws -> UserRecord {
        let id = try row.decode(column: "id", as: String.self)
        let roleText = try row.decode(column: "role", as: String.self)
        guard let role = Role(rawValue: roleText) else { throw StoredValueError(table: "users", column: "role", value: roleText) }
        return UserRecord(
            id: id,
            username: try row.decode(column: "username", as: String.self),
            passwordHash: try row.decode(column: "password_hash", as: String.self),
            role: role,
            createdAt: try row.decode(column: "created_at", as: Int64.self),
            disabledAt: try row.decode(column: "disabled_at", as: Int64?.self),
            mustChangePassword: try row.decode(column: "must_change_password", as: Int64.self) != 0,
            passwordChangedAt: try row.decode(column: "password_changed_at", as: Int64?.self))
    }

    static func existingUser(_ db: any SQLDatabase, id: String) async throws -> UserRecord {
        guard let row = try await db.raw("SELECT * FROM users WHERE id = \(bind: id)").first() else {
            throw StoreError.notFound("no user \(id)")
        }
        return try user(from: row)
    }

    /// Refuses a change that would leave no enabled admin. On PostgreSQL every enabled admin row is locked
    /// (the same rows, in the same order, whichever admin is changed), so two transactions that each
    /// disable one of the last two admins are serialised and the second sees that it holds the last one.
    static func requireAnotherEnabledAdmin(_ db: any SQLDatabase, besides id: String, lock: Bool, doing action: String) async throws {
        let admins = try await db.raw(
            """
            SELECT id FROM users WHERE role = 'admin' AND disabled_at IS NULL ORDER BY id\(unsafeRaw: lock ? " FOR UPDATE" : "")
            """
        ).all().map { try $0.decode(column: "id", as: String.self) }
        if !admins.contains(where: { $0 != id }) {
            throw StoreError.conflict("cannot \(action) the last enabled admin; make another user admin first")
        }
    }

    /// Deletes the user's sessions (but one) and all of their API tokens.
    static func endCredentials(_ db: any SQLDatabase, userID: String, keepingSession: String?) async throws {
        if let keepingSession {
            try await db.raw("DELETE FROM sessions WHERE user_id = \(bind: userID) AND token_hash <> \(bind: keepingSession)").run()
        } else {
            try await db.raw("DELETE FROM sessions WHERE user_id = \(bind: userID)").run()
        }
        try await db.raw("DELETE FROM api_tokens WHERE user_id = \(bind: userID)").run()
    }

    // MARK: - Sessions

    public func createSession(userID: String, tokenHash: String, csrf: String, now: Int64, expiresAt: Int64, actor: EventActor) async throws {
        try await change { db, events in
            events.append(.userLoggedIn, actor: actor, subject: userID, at: now)
            try await db.raw(
                """
                INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at)
                VALUES (\(bind: tokenHash), \(bind: userID), \(bind: csrf), \(bind: now), \(bind: expiresAt))
                """
            ).run()
        }
    }

    /// The enabled user of an unexpired session and its CSRF token.
    public func session(tokenHash: String, now: Int64) async throws -> (user: UserRecord, csrf: String)? {
        try await database.read { db in
            guard
                let row = try await db.raw(
                    """
                    SELECT u.*, s.csrf AS csrf FROM sessions s JOIN users u ON u.id = s.user_id
                    WHERE s.token_hash = \(bind: tokenHash) AND s.expires_at > \(bind: now) AND u.disabled_at IS NULL
                    """
                ).first()
            else { return nil }
            return (try Self.user(from: row), try row.decode(column: "csrf", as: String.self))
        }
    }

    public func deleteSession(tokenHash: String, now: Int64, actor: EventActor) async throws {
        try await change { db, events in
            let ended = try await db.raw("DELETE FROM sessions WHERE token_hash = \(bind: tokenHash) RETURNING user_id").first()
            if let ended {
                events.append(.userLoggedOut, actor: actor, subject: try ended.decode(column: "user_id", as: String.self), at: now)
            }
        }
    }

    // MARK: - API tokens

    /// Creates an API token for an enabled user. - Throws: ``StoreError/notFound(_:)`` for an unknown or
    /// disabled user.
    public func createToken(
        userID: String, name: String, tokenHash: String, now: Int64, expiresAt: Int64? = nil, actor: EventActor
    ) async throws -> TokenRecord {
        let id = Secrets.newID()
        return try await change { db, events in
            let user = try await Self.existingUser(db, id: userID)
            guard user.disabledAt == nil else { throw StoreError.notFound("no enabled user \(userID)") }
            try await db.raw(
                """
                INSERT INTO api_tokens (id, user_id, name, token_hash, created_at, expires_at)
                VALUES (\(bind: id), \(bind: userID), \(bind: name), \(bind: tokenHash), \(bind: now), \(bind: expiresAt))
                """
            ).run()
            var detail = ["name": name, "owner": user.username]
            if let expiresAt { detail["expiresAt"] = String(expiresAt) }
            events.append(.tokenCreated, actor: actor, subject: id, detail: detail, at: now)
            return TokenRecord(id: id, userID: userID, username: user.username, name: name, createdAt: now, lastUsedAt: nil, expiresAt: expiresAt)
        }
    }

    /// The enabled user an unexpired API token belongs to, and the token's id; records the use (to the
    /// minute, so that a busy client does not write on every request).
    public func tokenUser(tokenHash: String, now: Int64) async throws -> (user: UserRecord, tokenID: String)? {
        try await database.read { db in
            guard
                let row = try await db.raw(
                    """
                    SELECT u.*, t.id AS token_id, t.last_used_at AS token_last_used_at FROM api_tokens t JOIN users u ON u.id = t.user_id
                    WHERE t.token_hash = \(bind: tokenHash) AND u.disabled_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > \(bind: now))
                    """
                ).first()
            else { return nil }
            let tokenID = try row.decode(column: "token_id", as: String.self)
            let lastUsed = try row.decode(column: "token_last_used_at", as: Int64?.self)
            if lastUsed.map({ now - $0 >= 60_000 }) ?? true {
                try await db.raw("UPDATE api_tokens SET last_used_at = \(bind: now) WHERE id = \(bind: tokenID)").run()
            }
            return (try Self.user(from: row), tokenID)
        }
    }

    /// API tokens, oldest first: one user's, or everyone's when `userID` is nil.
    public func tokens(userID: String?) async throws -> [TokenRecord] {
        try await database.read { db in
            let rows: [any SQLRow]
            if let userID {
                rows = try await db.raw(
                    """
                    SELECT t.*, u.username AS username FROM api_tokens t JOIN users u ON u.id = t.user_id
                    WHERE t.user_id = \(bind: userID) ORDER BY t.created_at, t.id
                    """
                ).all()
            } else {
                rows = try await db.raw(
                    "SELECT t.*, u.username AS username FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.created_at, t.id"
                ).all()
            }
            return try rows.map(Self.token(from:))
        }
    }

    /// Deletes a token: one of the user's, or anyone's when `userID` is nil (admins).
    /// - Throws: ``StoreError/notFound(_:)``.
    @discardableResult
    public func deleteToken(id: String, userID: String?, now: Int64, actor: EventActor) async throws -> TokenRecord {
        try await change { db, events in
            guard
                let row = try await db.raw(
                    "SELECT t.*, u.username AS username FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = \(bind: id)"
                ).first()
            else { throw StoreError.notFound("no token \(id)") }
            let token = try Self.token(from: row)
            guard userID == nil || token.userID == userID else { throw StoreError.notFound("no token \(id)") }
            try await db.raw("DELETE FROM api_tokens WHERE id = \(bind: id)").run()
            events.append(.tokenRevoked, actor: actor, subject: id, detail: ["name": token.name, "owner": token.username], at: now)
            return token
        }
    }

    static func token(from row: any SQLRow) throws -> TokenRecord {
        TokenRecord(
            id: try row.decode(column: "id", as: String.self),
            userID: try row.decode(column: "user_id", as: String.self),
            username: try row.decode(column: "username", as: String.self),
            name: try row.decode(column: "name", as: String.self),
            createdAt: try row.decode(column: "created_at", as: Int64.self),
            lastUsedAt: try row.decode(column: "last_used_at", as: Int64?.self),
            expiresAt: try row.decode(column: "expires_at", as: Int64?.self))
    }
}
