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

extension TestClientProtocol {
    /// The generated client, acting with `token` (anonymous without one).
    func api(token: String? = nil) throws -> Client {
        let server = try #require(URL(string: "http://manager.test"))
        return Client(serverURL: server, transport: RouterTransport(client: self), middlewares: token.map { [BearerToken(token: $0)] } ?? [])
    }
}
