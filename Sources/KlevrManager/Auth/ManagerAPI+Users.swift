import KlevrAPI
import KlevrCore
import KlevrStore

/// Users, managed by admins. Each operation knows the caller (who acts) and the user it acts on (the
/// subject); the store changes the user, their sessions and their tokens in one transaction.
extension ManagerAPI {
    func listUsers(_ input: Operations.ListUsers.Input) async throws -> Operations.ListUsers.Output {
        _ = try context.requireCaller()
        return .ok(.init(body: .json(.init(items: try await store.users().map(Self.view), nextCursor: nil))))
    }

    func createUser(_ input: Operations.CreateUser.Input) async throws -> Operations.CreateUser.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("the body must be JSON") }
        let context = try context
        _ = try context.requireCaller()
        var errors: [ProblemDocument.FieldError] = []
        if !Validation.isValidName(body.username) {
            errors.append(.init(field: "username", message: "use 1-63 lowercase letters, digits or '-'"))
        }
        if let problem = PasswordRules.problem(body.password) { errors.append(.init(field: "password", message: problem)) }
        if !errors.isEmpty { throw Problem.invalid(errors) }
        let user = try await store.createUser(
            username: body.username, passwordHash: try await manager.passwords.hash(body.password), role: Role(body.role),
            now: Clock.nowMillis(), actor: context.actor)
        return .created(.init(body: .json(Self.view(user))))
    }

    func deleteUser(_ input: Operations.DeleteUser.Input) async throws -> Operations.DeleteUser.Output {
        let context = try context
        _ = try context.requireCaller()
        let subject = try await user(named: input.path.username)
        try await store.deleteUser(id: subject.id, now: Clock.nowMillis(), actor: context.actor)
        return .noContent(.init())
    }

    func disableUser(_ input: Operations.DisableUser.Input) async throws -> Operations.DisableUser.Output {
        let context = try context
        _ = try context.requireCaller()
        let subject = try await user(named: input.path.username)
        let user = try await store.setUserDisabled(id: subject.id, disabled: true, now: Clock.nowMillis(), actor: context.actor)
        return .ok(.init(body: .json(Self.view(user))))
    }

    func enableUser(_ input: Operations.EnableUser.Input) async throws -> Operations.EnableUser.Output {
        let context = try context
        _ = try context.requireCaller()
        let subject = try await user(named: input.path.username)
        let user = try await store.setUserDisabled(id: subject.id, disabled: false, now: Clock.nowMillis(), actor: context.actor)
        return .ok(.init(body: .json(Self.view(user))))
    }

    func setUserRole(_ input: Operations.SetUserRole.Input) async throws -> Operations.SetUserRole.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("the body must be JSON") }
        let context = try context
        _ = try context.requireCaller()
        let subject = try await user(named: input.path.username)
        let user = try await store.setUserRole(id: subject.id, role: Role(body.role), now: Clock.nowMillis(), actor: context.actor)
        return .ok(.init(body: .json(Self.view(user))))
    }

    /// The user named by a `{username}` path parameter. - Throws: 404.
    func user(named name: String) async throws -> UserRecord {
        guard Validation.isValidName(name), let user = try await store.user(named: name) else {
            throw Problem.notFound("no user named '\(name)'")
        }
        return user
    }
}
