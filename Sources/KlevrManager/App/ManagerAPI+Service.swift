import KlevrAPI
import KlevrStore
import OpenAPIRuntime

/// The service itself: liveness, readiness and the API document.
extension ManagerAPI {
    func health(_ input: Operations.Health.Input) async throws -> Operations.Health.Output {
        .ok(.init(body: .plainText("ok")))
    }

    /// Ready when the database answers a query.
    func ready(_ input: Operations.Ready.Input) async throws -> Operations.Ready.Output {
        _ = try await store.userCount()
        return .ok(.init(body: .plainText("ready")))
    }

    func openapi(_ input: Operations.Openapi.Input) async throws -> Operations.Openapi.Output {
        _ = try context.requireUser()
        guard let text = OpenAPIDocument.text() else { throw Problem.notFound("the OpenAPI document is missing from this build") }
        return .ok(.init(body: .yaml(HTTPBody(text))))
    }
}
