import AsyncHTTPClient
import Foundation
import KlevrAPI
import KlevrCore
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL

/// A small JSON-over-HTTP client for the Klevr API, used by the agent, the CLI and the benchmarks.
public struct JSONClient: Sendable {
    /// An answer that was not a success: the problem document when the server sent one.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var status: Int
        public var problem: ProblemDocument?
        public var body: String
        public var description: String {
            if let problem { return "\(problem.detail) (HTTP \(status))" }
            return "HTTP \(status)\(body.isEmpty ? "" : ": " + body.prefix(300))"
        }
    }

    public let baseURL: String
    public let http: HTTPClient
    public var bearer: String?
    /// How this client's requests verify an `https://` server; nil uses the HTTP client's own setting.
    public var tls: TLSConfiguration?

    public init(baseURL: String, http: HTTPClient = .shared, bearer: String? = nil, tls: TLSConfiguration? = nil) {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        self.http = http
        self.bearer = bearer
        self.tls = tls
    }

    /// Sends a request and decodes a JSON answer.
    public func send<Response: Decodable>(
        _ method: HTTPMethod, _ path: String, body: (some Encodable)? = nil as String?, as type: Response.Type,
        timeout: TimeAmount = .seconds(30)
    ) async throws -> Response {
        let data = try await raw(method, path, body: body, timeout: timeout)
        return try JSONDecoder().decode(Response.self, from: data)
    }

    /// Sends a request and returns the raw body of a success.
    public func raw(_ method: HTTPMethod, _ path: String, body: (some Encodable)? = nil as String?, timeout: TimeAmount = .seconds(30))
        async throws -> Data
    {
        try await exchange(method, path, body: body, timeout: timeout).body
    }

    /// Sends a request with extra headers; returns the body and headers of a success.
    public func exchange(
        _ method: HTTPMethod, _ path: String, body: (some Encodable)? = nil as String?, headers extra: [(String, String)] = [],
        timeout: TimeAmount = .seconds(30)
    ) async throws -> (body: Data, headers: HTTPHeaders) {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.tlsConfiguration = tls
        if let bearer { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
        for (name, value) in extra { request.headers.add(name: name, value: value) }
        var bodyData = Data()
        if let body {
            bodyData = try JSONEncoder().encode(body)
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: bodyData))
        }
        let response = try await http.execute(request, timeout: timeout)
        var buffer = try await response.body.collect(upTo: 256 << 20)
        let data = buffer.readData(length: buffer.readableBytes) ?? Data()
        guard (200..<300).contains(response.status.code) else {
            throw Failure(
                status: Int(response.status.code), problem: try? JSONDecoder().decode(ProblemDocument.self, from: data),
                body: String(decoding: data, as: UTF8.self))
        }
        return (data, response.headers)
    }
}
