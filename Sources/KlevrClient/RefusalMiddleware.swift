import Foundation
import HTTPTypes
import OpenAPIRuntime

/// Turns every answer outside 2xx into a ``ManagerRefusal`` before the generated code decodes it, so
/// that a documented refusal (`.notFound`, `.conflict` …) and an undocumented one reach callers the
/// same way, with the problem document read from a bounded body.
struct RefusalMiddleware: ClientMiddleware {
    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        let (response, answer) = try await next(request, body, baseURL)
        guard response.status.kind == .successful else {
            throw await ManagerRefusal(status: response.status.code, body: answer)
        }
        return (response, answer)
    }
}
