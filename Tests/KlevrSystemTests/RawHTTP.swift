import AsyncHTTPClient
import Foundation
import KlevrAPI
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL

/// Raw HTTP for what the generated client cannot (or must not) send: forged or malformed bodies, the
/// agent protocol's requests (whose hand-written types stay), requests to a peer port, plain HTTP to a
/// TLS port, and answers whose raw headers are checked. Any status comes back as is, never as an error.
/// The default deadline is generous (30 s): an answer only has to come, and a manager or agent next to a
/// dozen other suites' processes on two cores may be slow to give it.
enum RawHTTP {
    struct Answer: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: Data

        /// The answer's RFC 9457 problem document, if it is one.
        var problem: Components.Schemas.Problem? { try? JSONDecoder().decode(Components.Schemas.Problem.self, from: body) }
        var isSuccess: Bool { (200..<300).contains(status) }
    }

    /// Sends `body` as is (with the headers given) and returns the answer, whatever its status.
    static func send(
        _ method: HTTPMethod, _ url: String, body: Data? = nil, headers: [(String, String)] = [], tls: TLSConfiguration? = nil,
        timeout: TimeAmount = .seconds(30)
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.tlsConfiguration = tls
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: timeout)
        var buffer = try await response.body.collect(upTo: 16 << 20)
        return Answer(status: Int(response.status.code), headers: response.headers, body: buffer.readData(length: buffer.readableBytes) ?? Data())
    }

    /// Sends `value` encoded as JSON (`Content-Type: application/json`), optionally with a bearer token.
    static func sendJSON(
        _ method: HTTPMethod, _ url: String, _ value: some Encodable, bearer: String? = nil, timeout: TimeAmount = .seconds(30)
    ) async throws -> Answer {
        var headers = [("Content-Type", "application/json")]
        if let bearer { headers.append(("Authorization", "Bearer \(bearer)")) }
        return try await send(method, url, body: try JSONEncoder().encode(value), headers: headers, timeout: timeout)
    }
}
