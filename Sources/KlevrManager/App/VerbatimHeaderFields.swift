import Foundation
import HTTPTypes
import OpenAPIRuntime

/// Sends the response header fields whose syntax is their own (`Set-Cookie`, `Cache-Control`) as the
/// handler wrote them.
///
/// The generated server percent-encodes every header value as a URI component (so a cookie's `=` and
/// `;` would reach the client as `%3D` and `%3B`; apple/swift-openapi-generator#529). Percent-decoding
/// is the exact inverse of that encoding, so the handler's text comes back unchanged.
struct VerbatimHeaderFields: ServerMiddleware {
    static let names: [HTTPField.Name] = [.setCookie, .cacheControl]

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, metadata: ServerRequestMetadata, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var (response, responseBody) = try await next(request, body, metadata)
        for name in Self.names where response.headerFields[name] != nil {
            response.headerFields[values: name] = response.headerFields[values: name].map { $0.removingPercentEncoding ?? $0 }
        }
        return (response, responseBody)
    }
}
