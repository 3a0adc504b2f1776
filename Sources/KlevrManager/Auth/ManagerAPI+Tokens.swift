import KlevrAPI
import KlevrCore
import KlevrStore

/// API tokens: every user lists, creates and revokes their own; admins list and revoke everyone's.
extension ManagerAPI {
    /// The longest lifetime a token can be given at creation (a token created without one does not expire).
    static let maximumTokenDays = 365

    func listTokens(_ input: Operations.ListTokens.Input) async throws -> Operations.ListTokens.Output {
        let caller = try context.requireCaller()
        let all = input.query.all ?? false
        if all && caller.user.role < .admin {
            throw Problem.forbidden("listing everyone's tokens needs the admin role; you are \(caller.user.role.rawValue)")
        }
        let tokens = try await store.tokens(userID: all ? nil : caller.user.id).map(Self.view)
        return .ok(.init(body: .json(.init(items: tokens, nextCursor: nil))))
    }

    func createToken(_ input: Operations.CreateToken.Input) async throws -> Operations.CreateToken.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("the body must be JSON") }
        let context = try context
        let caller = try context.requireCaller()
        let now = Clock.nowMillis()
        let expiresAt = try Self.tokenExpiry(name: body.name, expiresInDays: body.expiresInDays, now: now)
        let token = Secrets.generate(.apiToken)
        let record = try await store.createToken(
            userID: caller.user.id, name: body.name, tokenHash: Secrets.hash(token), now: now, expiresAt: expiresAt, actor: context.actor)
        return .created(.init(body: .json(.init(id: record.id, name: record.name, token: token, createdAt: now, expiresAt: record.expiresAt))))
    }

    func deleteToken(_ input: Operations.DeleteToken.Input) async throws -> Operations.DeleteToken.Output {
        let context = try context
        let caller = try context.requireCaller()
        // Admins revoke anyone's token; everyone else only their own (another user's is not found).
        try await store.deleteToken(
            id: try Self.id(input.path.id), userID: caller.user.role == .admin ? nil : caller.user.id, now: Clock.nowMillis(),
            actor: context.actor)
        return .noContent(.init())
    }

    /// Validates a token request and returns its expiry (nil: never). - Throws: 422 naming the fields.
    static func tokenExpiry(name: String, expiresInDays: Int?, now: Int64) throws -> Int64? {
        var errors: [ProblemDocument.FieldError] = []
        if name.isEmpty || name.unicodeScalars.count > 100 {
            errors.append(.init(field: "name", message: "must be 1 to 100 characters"))
        }
        let dayMillis: Int64 = 86_400_000
        var expiresAt: Int64?
        if let days = expiresInDays {
            if (1...maximumTokenDays).contains(days) {
                expiresAt = now + Int64(days) * dayMillis
            } else {
                errors.append(.init(field: "expiresInDays", message: "must be 1 to \(maximumTokenDays)"))
            }
        }
        if !errors.isEmpty { throw Problem.invalid(errors) }
        return expiresAt
    }

    /// A token as listed: never its value.
    static func view(_ token: TokenRecord) -> Components.Schemas.Token {
        .init(
            id: token.id, name: token.name, owner: token.username, createdAt: token.createdAt, lastUsedAt: token.lastUsedAt,
            expiresAt: token.expiresAt)
    }
}
