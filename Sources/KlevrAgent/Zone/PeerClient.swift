import AsyncHTTPClient
import Crypto
import Foundation
import KlevrAPI
import KlevrCore
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// Calls to another member's peer API: every request is signed with this agent's key
/// (``PeerStamp``), and every answer must be signed by the member this agent meant to reach, bound to
/// the request's nonce; an answer that is not is an error, whatever it says.
struct PeerClient: Sendable {
    enum Failure: Error, CustomStringConvertible {
        /// The answer was not signed by a member the caller trusts.
        case unauthenticatedAnswer(String)
        /// A signed answer that is not a success.
        case status(Int, Data)

        var description: String {
            switch self {
            case .unauthenticatedAnswer(let address): "the answer from \(address) is not signed by a member of the zone"
            case .status(let code, let body): "HTTP \(code): \(String(decoding: body.prefix(300), as: UTF8.self))"
            }
        }
    }

    let address: String
    let http: HTTPClient
    let agentID: String
    let zoneID: String
    let key: Curve25519.Signing.PrivateKey
    let clock: ManagerClock

    /// The largest answer accepted from a peer.
    static let maxAnswerBytes = 32 << 20

    /// Sends a signed request; returns the signer and the body of a signed answer (any status).
    func exchange(
        _ method: HTTPMethod, _ path: String, body: Data?, timeout: TimeAmount, headers: [(String, String)] = [],
        keyOf: @Sendable (String, Data) -> Curve25519.Signing.PublicKey?
    ) async throws -> (signer: String, status: Int, body: Data) {
        var request = HTTPClientRequest(url: "http://\(address)\(path)")
        request.method = method
        let bytes = body ?? Data()
        let stamp = try PeerStamp.sign(
            method: method.rawValue, path: path.split(separator: "?").first.map(String.init) ?? path, body: bytes, sender: agentID, zone: zoneID,
            time: clock.now(), key: key)
        request.headers.add(name: PeerStamp.header, value: stamp.headerValue)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await http.execute(request, timeout: timeout)
        var buffer = try await response.body.collect(upTo: Self.maxAnswerBytes)
        let data = buffer.readData(length: buffer.readableBytes) ?? Data()
        let status = Int(response.status.code)
        guard let header = response.headers.first(name: PeerStamp.answerHeader),
            let signer = PeerStamp.verifyAnswer(header: header, requestNonce: stamp.nonce, status: status, body: data, keyOf: { keyOf($0, data) })
        else { throw Failure.unauthenticatedAnswer(address) }
        return (signer, status, data)
    }

    /// Sends a signed request and decodes a signed success.
    func send<Value: Decodable>(
        _ method: HTTPMethod, _ path: String, body: (some Encodable)?, as type: Value.Type, timeout: TimeAmount,
        keyOf: @Sendable (String, Data) -> Curve25519.Signing.PublicKey?
    ) async throws -> (signer: String, value: Value) {
        let bytes = try body.map { try JSONEncoder().encode($0) }
        let answer = try await exchange(method, path, body: bytes, timeout: timeout, keyOf: keyOf)
        guard (200..<300).contains(answer.status) else { throw Failure.status(answer.status, answer.body) }
        return (answer.signer, try JSONDecoder().decode(Value.self, from: answer.body))
    }
}
