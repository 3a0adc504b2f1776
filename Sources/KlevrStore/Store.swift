import Foundation
import KlevrCore
import Logging
import SQLKit

/// The manager's persistent state: every read and write of the domain goes through here.
///
/// All SQL of the project lives in this module, with bound parameters only.
public struct Store: Sendable {
    public let database: Database
    /// Wakes followers of runs, agents, zones and the event log when they change.
    public let hub: WakeupHub
    /// Fault injection for tests.
    public let hooks: StoreHooks

    /// Opens the database and applies pending migrations.
    public static func open(_ url: DatabaseURL, logger: Logger) async throws -> Store {
        let database = try await Database.open(url, logger: logger)
        return Store(database: database)
    }

    public init(database: Database, hub: WakeupHub = WakeupHub()) {
        self.database = database
        self.hub = hub
        self.hooks = StoreHooks()
    }

    /// Applies pending schema migrations.
    public func migrate() async throws {
        try await Migrations.migrate(database)
    }

    // MARK: - Users

    /// The number of users (zero means the first admin must be created).
    public func userCount() async throws -> Int {
        try await database.read { db in
            let row = try await db.raw("SELECT COUNT(*) AS n FROM users").first()
            return Int(try row?.decode(column: "n", as: Int64.self) ?? 0)
        }
    }

    /// Creates a user. - Throws: ``StoreError/conflict(_:)`` when the name is taken.
    public func createUser(username: String, passwordHash: String, role: Role, now: Int64) async throws -> UserRecord {
        let user = UserRecord(id: Secrets.newID(), username: username, passwordHash: passwordHash, role: role, createdAt: now)
        try await database.transaction { db in
            if try await db.raw("SELECT id FROM users WHERE username = \(bind: username)").first() != nil {
                throw StoreError.conflict("a user named '\(username)' already exists")
            }
            try await db.raw(
                """
                INSERT INTO users (id, username, password_hash, role, created_at)
                VALUES (\(bind: user.id), \(bind: username), \(bind: passwordHash), \(bind: role.rawValue), \(bind: now))
                """
            ).run()
        }
        return user
    }

    public func user(named username: String) async throws -> UserRecord? {
        try await database.read { db in
            try await db.raw("SELECT * FROM users WHERE username = \(bind: username)").first().map(Self.user(from:))
        }
    }

    public func users() async throws -> [UserRecord] {
        try await database.read { db in
            try await db.raw("SELECT * FROM users ORDER BY created_at, id").all().map(Self.user(from:))
        }
    }

    static func user(from row: any SQLRow) throws -> UserRecord {
        UserRecord(
            id: try row.decode(column: "id", as: String.self),
            username: try row.decode(column: "username", as: String.self),
            passwordHash: try row.decode(column: "password_hash", as: String.self),
            role: Role(rawValue: try row.decode(column: "role", as: String.self)) ?? .viewer,
            createdAt: try row.decode(column: "created_at", as: Int64.self))
    }

    // MARK: - Sessions and API tokens

    public func createSession(userID: String, tokenHash: String, csrf: String, now: Int64, expiresAt: Int64) async throws {
        try await database.read { db in
            try await db.raw(
                """
                INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at)
                VALUES (\(bind: tokenHash), \(bind: userID), \(bind: csrf), \(bind: now), \(bind: expiresAt))
                """
            ).run()
        }
    }

    /// The user of an unexpired session and its CSRF token.
    public func session(tokenHash: String, now: Int64) async throws -> (user: UserRecord, csrf: String)? {
        try await database.read { db in
            guard
                let row = try await db.raw(
                    """
                    SELECT u.*, s.csrf AS csrf FROM sessions s JOIN users u ON u.id = s.user_id
                    WHERE s.token_hash = \(bind: tokenHash) AND s.expires_at > \(bind: now)
                    """
                ).first()
            else { return nil }
            return (try Self.user(from: row), try row.decode(column: "csrf", as: String.self))
        }
    }

    public func deleteSession(tokenHash: String) async throws {
        try await database.read { db in
            try await db.raw("DELETE FROM sessions WHERE token_hash = \(bind: tokenHash)").run()
        }
    }

    public func createToken(userID: String, name: String, tokenHash: String, now: Int64) async throws -> String {
        let id = Secrets.newID()
        try await database.read { db in
            try await db.raw(
                """
                INSERT INTO api_tokens (id, user_id, name, token_hash, created_at)
                VALUES (\(bind: id), \(bind: userID), \(bind: name), \(bind: tokenHash), \(bind: now))
                """
            ).run()
        }
        return id
    }

    /// The user an API token belongs to; records the use.
    public func tokenUser(tokenHash: String, now: Int64) async throws -> UserRecord? {
        try await database.read { db in
            guard
                let row = try await db.raw(
                    "SELECT u.* FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = \(bind: tokenHash)"
                ).first()
            else { return nil }
            try await db.raw("UPDATE api_tokens SET last_used_at = \(bind: now) WHERE token_hash = \(bind: tokenHash)").run()
            return try Self.user(from: row)
        }
    }

    public func tokens(userID: String) async throws -> [(id: String, name: String, createdAt: Int64, lastUsedAt: Int64?)] {
        try await database.read { db in
            try await db.raw("SELECT * FROM api_tokens WHERE user_id = \(bind: userID) ORDER BY created_at, id").all().map { row in
                (
                    try row.decode(column: "id", as: String.self), try row.decode(column: "name", as: String.self),
                    try row.decode(column: "created_at", as: Int64.self), try row.decode(column: "last_used_at", as: Int64?.self)
                )
            }
        }
    }

    /// Deletes one of the user's tokens. - Throws: ``StoreError/notFound(_:)``.
    public func deleteToken(id: String, userID: String) async throws {
        try await database.transaction { db in
            guard try await db.raw("SELECT id FROM api_tokens WHERE id = \(bind: id) AND user_id = \(bind: userID)").first() != nil else {
                throw StoreError.notFound("no token \(id)")
            }
            try await db.raw("DELETE FROM api_tokens WHERE id = \(bind: id)").run()
        }
    }
}

extension Store {
    static func encodeJSON(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func decodeJSON<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }
}
