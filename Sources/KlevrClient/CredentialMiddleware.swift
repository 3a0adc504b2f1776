import Foundation
import HTTPTypes
import OpenAPIRuntime

/// Adds the caller's credential to every request: a bearer token, or a login session's cookie and
/// its CSRF token (which the manager requires on cookie-authenticated writes).
struct CredentialMiddleware: ClientMiddleware {
    static let csrfHeader = HTTPField.Name("X-Klevr-CSRF")

    let credential: ManagerCredential

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var request = request
        switch credential {
        case .bearer(let token):
            request.headerFields[.authorization] = "Bearer \(token)"
        case .session(let cookie, let csrf):
            request.headerFields[.cookie] = cookie
            if let name = Self.csrfHeader { request.headerFields[name] = csrf }
        }
        return try await next(request, body, baseURL)
    }
}
