import Foundation
import HTTPTypes
import HummingbirdTesting
import KlevrAPI
import NIOCore
import OpenAPIRuntime
import Testing

/// The generated client of the API, sending its requests to the manager's router in-process.
struct RouterTransport: ClientTransport {
    let client: any TestClientProtocol

    func send(_ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String) async throws -> (HTTPResponse, HTTPBody?) {
        var buffer: ByteBuffer?
        if let body { buffer = ByteBuffer(bytes: try await [UInt8](collecting: body, upTo: 32 << 20)) }
        return try await client.execute(uri: request.path ?? "/", method: request.method, headers: request.headerFields, body: buffer) { response in
            (HTTPResponse(status: response.status, headerFields: response.headers), HTTPBody([UInt8](buffer: response.body)))
        }
    }
}

/// Adds `Authorization: Bearer <token>` to every request.
struct BearerToken: ClientMiddleware {
    let token: String

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var request = request
        request.headerFields[.authorization] = "Bearer \(token)"
        return try await next(request, body, baseURL)
    }
}

/// Adds fixed header fields to every request (a session's cookie and CSRF token).
struct ExtraHeaders: ClientMiddleware {
    let fields: HTTPFields

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var request = request
        for field in fields { request.headerFields[field.name] = field.value }
        return try await next(request, body, baseURL)
    }
}

extension TestClientProtocol {
    /// The generated client, acting with `token` (anonymous without one).
    func api(token: String? = nil) throws -> Client {
        let server = try #require(URL(string: "http://manager.test"))
        return Client(serverURL: server, transport: RouterTransport(client: self), middlewares: token.map { [BearerToken(token: $0)] } ?? [])
    }

    /// The generated client, sending `headers` with every request (a session's cookie and CSRF token).
    func api(headers: HTTPFields) throws -> Client {
        let server = try #require(URL(string: "http://manager.test"))
        return Client(serverURL: server, transport: RouterTransport(client: self), middlewares: [ExtraHeaders(fields: headers)])
    }
}

/// The document's `Target` is a `oneOf` that the generator makes an enum of two anonymous cases; these
/// name them (as `KlevrClient` does, under other names so that the two never clash).
extension Components.Schemas.Target {
    /// The one agent with this id.
    static func oneAgent(_ id: String) -> Self { .case1(.init(kind: "agent", agentId: id)) }
    /// One online agent of the zone, chosen by the manager.
    static var anyAgent: Self { .case2(.init(kind: "any")) }
    /// Every agent of the zone that is not retired.
    static var allAgents: Self { .case2(.init(kind: "all")) }
}

/// The status of an answer, for tests that expect one of several (the generated client has an accessor
/// per documented status, which throws for the others).
extension Operations.CreateUser.Output {
    var status: HTTPResponse.Status {
        switch self {
        case .created: .created
        case .badRequest: .badRequest
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .conflict: .conflict
        case .contentTooLarge: .contentTooLarge
        case .unprocessableContent: .unprocessableContent
        case .undocumented(let code, _): HTTPResponse.Status(code: code)
        }
    }
}

extension Operations.Login.Output {
    var status: HTTPResponse.Status {
        switch self {
        case .ok: .ok
        case .badRequest: .badRequest
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .contentTooLarge: .contentTooLarge
        case .unprocessableContent: .unprocessableContent
        case .tooManyRequests: .tooManyRequests
        case .undocumented(let code, _): HTTPResponse.Status(code: code)
        }
    }
}

extension Operations.ChangePassword.Output {
    var status: HTTPResponse.Status {
        switch self {
        case .noContent: .noContent
        case .badRequest: .badRequest
        case .contentTooLarge: .contentTooLarge
        case .unprocessableContent: .unprocessableContent
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .undocumented(let code, _): HTTPResponse.Status(code: code)
        }
    }
}
