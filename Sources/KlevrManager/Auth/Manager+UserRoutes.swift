import Foundation
import Hummingbird
import KlevrAPI
import KlevrCore
import KlevrStore

// Users, managed by admins. Each route knows the caller (who acts) and the user it acts on (the subject);
// the store changes the user, their sessions and their tokens in one transaction.
extension Manager {
    func addUserRoutes(to router: Router<KlevrRequestContext>) {
        router.get("/api/v1/users") { _, context in
            _ = try context.requireCaller()
            return try JSONBody.response(Page(items: try await store.users().map(Self.view), nextCursor: nil))
        }
        router.post("/api/v1/users") { request, context in
            _ = try context.requireCaller()
            let body = try await JSONBody.decode(UserCreateRequest.self, from: request)
            var errors: [ProblemDocument.FieldError] = []
            if !Validation.isValidName(body.username) {
                errors.append(.init(field: "username", message: "use 1-63 lowercase letters, digits or '-'"))
            }
            if let problem = PasswordRules.problem(body.password) { errors.append(.init(field: "password", message: problem)) }
            if !errors.isEmpty { throw Problem.invalid(errors) }
            let user = try await store.createUser(
                username: body.username, passwordHash: try await passwords.hash(body.password), role: body.role, now: Clock.nowMillis(), actor: context.actor)
            return try JSONBody.response(Self.view(user), status: .created)
        }
        router.delete("/api/v1/users/{username}") { _, context in
            _ = try context.requireCaller()
            let subject = try await userSubject(context)
            try await store.deleteUser(id: subject.id, now: Clock.nowMillis(), actor: context.actor)
            return Response(status: .noContent)
        }
        router.post("/api/v1/users/{username}/disable") { _, context in
            _ = try context.requireCaller()
            let subject = try await userSubject(context)
            return try JSONBody.response(Self.view(try await store.setUserDisabled(id: subject.id, disabled: true, now: Clock.nowMillis(), actor: context.actor)))
        }
        router.post("/api/v1/users/{username}/enable") { _, context in
            _ = try context.requireCaller()
            let subject = try await userSubject(context)
            return try JSONBody.response(Self.view(try await store.setUserDisabled(id: subject.id, disabled: false, now: Clock.nowMillis(), actor: context.actor)))
        }
        router.put("/api/v1/users/{username}/role") { request, context in
            _ = try context.requireCaller()
            let subject = try await userSubject(context)
            let body = try await JSONBody.decode(UserRoleRequest.self, from: request)
            return try JSONBody.response(Self.view(try await store.setUserRole(id: subject.id, role: body.role, now: Clock.nowMillis(), actor: context.actor)))
        }
    }

    /// The user named by the `{username}` path parameter. - Throws: 404.
    func userSubject(_ context: KlevrRequestContext) async throws -> UserRecord {
        let name = context.parameters.get("username") ?? ""
        guard Validation.isValidName(name), let user = try await store.user(named: name) else {
            throw Problem.notFound("no user named '\(name)'")
        }
        return user
    }
}
