import Foundation
import KlevrAPI
import KlevrCore
import KlevrStore

/// Credentials: admins create, replace and delete them; everyone lists them. No answer ever holds a
/// value: it is sealed under the master key before it is stored, and opened only to seal it to the agent
/// of a run that names it (see ``Manager/sealedCredentials(for:agentKey:)``).
extension ManagerAPI {
    static let maximumCredentialValue = 65536

    func listCredentials(_ input: Operations.ListCredentials.Input) async throws -> Operations.ListCredentials.Output {
        let items = try await store.credentials(zoneName: input.query.zone, global: input.query.global ?? false).map(Self.view)
        return .ok(.init(body: .json(.init(items: items, nextCursor: nil))))
    }

    func createCredential(_ input: Operations.CreateCredential.Input) async throws -> Operations.CreateCredential.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("the body must be JSON") }
        let context = try context
        var errors = Self.credentialProblems(value: body.value, description: body.description)
        if !Validation.isValidParameterName(body.name) {
            errors.append(.init(field: "name", message: "letters, digits and '_', not starting with a digit, at most 64"))
        }
        if let zone = body.zone, !Validation.isValidName(zone) { errors.append(.init(field: "zone", message: "use 1-63 lowercase letters, digits or '-'")) }
        if !errors.isEmpty { throw Problem.invalid(errors) }
        let id = Secrets.newID()
        let sealed = try manager.config.secretBox.seal(Data(body.value.utf8), context: Store.credentialContext(id))
        let record = try await store.createCredential(
            id: id, name: body.name, zoneName: body.zone, description: body.description ?? "", sealed: sealed, by: try context.requireUser().username,
            now: Clock.nowMillis(), actor: context.actor)
        return .created(.init(body: .json(Self.view(record))))
    }

    func getCredential(_ input: Operations.GetCredential.Input) async throws -> Operations.GetCredential.Output {
        let id = try Self.id(input.path.id)
        guard let record = try await store.credential(id: id) else { throw Problem.notFound("no credential \(id)") }
        return .ok(.init(body: .json(Self.view(record))))
    }

    func updateCredential(_ input: Operations.UpdateCredential.Input) async throws -> Operations.UpdateCredential.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("the body must be JSON") }
        let context = try context
        let id = try Self.id(input.path.id)
        let errors = Self.credentialProblems(value: body.value, description: body.description)
        if !errors.isEmpty { throw Problem.invalid(errors) }
        guard body.value != nil || body.description != nil else {
            // Nothing to change: the credential as it is.
            guard let record = try await store.credential(id: id) else { throw Problem.notFound("no credential \(id)") }
            return .ok(.init(body: .json(Self.view(record))))
        }
        let sealed = try body.value.map { try manager.config.secretBox.seal(Data($0.utf8), context: Store.credentialContext(id)) }
        let record = try await store.updateCredential(id: id, sealed: sealed, description: body.description, now: Clock.nowMillis(), actor: context.actor)
        return .ok(.init(body: .json(Self.view(record))))
    }

    func deleteCredential(_ input: Operations.DeleteCredential.Input) async throws -> Operations.DeleteCredential.Output {
        let context = try context
        try await store.deleteCredential(id: try Self.id(input.path.id), now: Clock.nowMillis(), actor: context.actor)
        return .noContent(.init())
    }

    static func credentialProblems(value: String?, description: String?) -> [ProblemDocument.FieldError] {
        var errors: [ProblemDocument.FieldError] = []
        if let value, value.isEmpty || value.unicodeScalars.count > maximumCredentialValue || value.unicodeScalars.contains("\0") {
            errors.append(.init(field: "value", message: "1 to \(maximumCredentialValue) characters, no NUL"))
        }
        if let description, description.unicodeScalars.count > 500 { errors.append(.init(field: "description", message: "at most 500 characters")) }
        return errors
    }

    static func view(_ record: CredentialRecord) -> Components.Schemas.Credential {
        .init(
            id: record.id, name: record.name, scope: record.zoneID == nil ? .global : .zone, zone: record.zoneName, description: record.description,
            createdAt: record.createdAt, createdBy: record.createdBy, updatedAt: record.updatedAt)
    }
}
