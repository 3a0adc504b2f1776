import Foundation
import Hummingbird
import KlevrAPI
import KlevrCore
import KlevrStore

// API tokens: every user lists, creates and revokes their own; admins list and revoke everyone's.
extension Manager {
    /// The longest lifetime a token can be given at creation (a token created without one does not expire).
    static let maximumTokenDays = 365

    func addTokenRoutes(to router: Router<KlevrRequestContext>) {
        router.get("/api/v1/tokens") { request, context in
            let caller = try context.requireCaller()
            let all: Bool
            switch request.uri.queryParameters["all"].map({ String($0) }) {
            case nil, "false": all = false
            case "true": all = true
            default: throw Problem.invalid("all", "must be true or false")
            }
            if all && caller.user.role < .admin {
                throw Problem.forbidden("listing everyone's tokens needs the admin role; you are \(caller.user.role.rawValue)")
            }
            let tokens = try await store.tokens(userID: all ? nil : caller.user.id).map(Self.view)
            return try JSONBody.response(Page(items: tokens, nextCursor: nil))
        }
        router.post("/api/v1/tokens") { request, context in
            let caller = try context.requireCaller()
            let body = try await JSONBody.decode(TokenCreateRequest.self, from: request)
            let now = Clock.nowMillis()
            let expiresAt = try Self.tokenExpiry(body, now: now)
            let token = Secrets.generate(.apiToken)
            let record = try await store.createToken(
                userID: caller.user.id, name: body.name, tokenHash: Secrets.hash(token), now: now, expiresAt: expiresAt, actor: context.actor)
            return try JSONBody.response(
                TokenCreated(id: record.id, name: record.name, token: token, createdAt: now, expiresAt: record.expiresAt), status: .created)
        }
        router.delete("/api/v1/tokens/{id}") { _, context in
            let caller = try context.requireCaller()
            // Admins revoke anyone's token; everyone else only their own (another user's is not found).
            try await store.deleteToken(id: try Self.id(context), userID: caller.user.role == .admin ? nil : caller.user.id, now: Clock.nowMillis(),
                actor: context.actor)
            return Response(status: .noContent)
        }
    }

    /// Validates a token request and returns its expiry (nil: never). - Throws: 422 naming the fields.
    static func tokenExpiry(_ body: TokenCreateRequest, now: Int64) throws -> Int64? {
        var errors: [ProblemDocument.FieldError] = []
        if body.name.isEmpty || body.name.unicodeScalars.count > 100 {
            errors.append(.init(field: "name", message: "must be 1 to 100 characters"))
        }
        let dayMillis: Int64 = 86_400_000
        var expiresAt: Int64?
        if let days = body.expiresInDays {
            if (1...maximumTokenDays).contains(days) {
                expiresAt = now + Int64(days) * dayMillis
            } else {
                errors.append(.init(field: "expiresInDays", message: "must be 1 to \(maximumTokenDays)"))
            }
        }
        if !errors.isEmpty { throw Problem.invalid(errors) }
        return expiresAt
    }

    static func view(_ token: TokenRecord) -> TokenView {
        TokenView(
            id: token.id, name: token.name, owner: token.username, createdAt: token.createdAt, lastUsedAt: token.lastUsedAt,
            expiresAt: token.expiresAt)
    }
}
