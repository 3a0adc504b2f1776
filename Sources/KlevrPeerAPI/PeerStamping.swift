import Crypto
import Foundation
import HTTPTypes
import KlevrAPI
import OpenAPIRuntime

/// The client side of the peer API's authentication, as a middleware of the generated client: signs
/// every request with the member's key (`X-Klevr-Peer`, over the exact body bytes sent, see
/// ``KlevrAPI/PeerStamp``) and accepts an answer only when its `X-Klevr-Peer-Answer` verifies with the
/// key of the member `keyOf` names, bound to the request's nonce. Who signed the answer is handed to
/// `verified`; an answer that does not verify is ``UnauthenticatedAnswer``, whatever it says.
public struct PeerStamping: ClientMiddleware {
    /// The answer was not signed by a member the caller trusts.
    public struct UnauthenticatedAnswer: Error, CustomStringConvertible {
        public var description: String { "the answer is not signed by a member of the zone" }
    }

    let agentID: String
    let zoneID: String
    let key: Curve25519.Signing.PrivateKey
    let time: @Sendable () -> Int64
    let maxBody: Int
    let maxAnswer: Int
    let keyOf: @Sendable (String, Data) -> Curve25519.Signing.PublicKey?
    let verified: @Sendable (String) -> Void

    /// - Parameters:
    ///   - time: the manager's time as the member estimates it (epoch ms), for the stamp.
    ///   - maxBody, maxAnswer: the largest request and answer bodies read (more is an error).
    ///   - keyOf: the key of a signer the caller trusts (with the answer's body, which may carry the
    ///     membership that lists it), or nil.
    public init(
        agentID: String, zoneID: String, key: Curve25519.Signing.PrivateKey, time: @escaping @Sendable () -> Int64, maxBody: Int, maxAnswer: Int,
        keyOf: @escaping @Sendable (String, Data) -> Curve25519.Signing.PublicKey?, verified: @escaping @Sendable (String) -> Void
    ) {
        self.agentID = agentID
        self.zoneID = zoneID
        self.key = key
        self.time = time
        self.maxBody = maxBody
        self.maxAnswer = maxAnswer
        self.keyOf = keyOf
        self.verified = verified
    }

    public func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        guard let stampName = HTTPField.Name(PeerStamp.header), let answerName = HTTPField.Name(PeerStamp.answerHeader) else {
            throw UnauthenticatedAnswer()
        }
        var request = request
        var bytes = Data()
        if let body { bytes = try await Data(collecting: body, upTo: maxBody) }
        let path = request.path.flatMap { $0.split(separator: "?", omittingEmptySubsequences: false).first.map(String.init) } ?? "/"
        let stamp = try PeerStamp.sign(method: request.method.rawValue, path: path, body: bytes, sender: agentID, zone: zoneID, time: time(), key: key)
        request.headerFields[stampName] = stamp.headerValue
        let (response, answerBody) = try await next(request, body == nil ? nil : HTTPBody(bytes), baseURL)
        var answer = Data()
        if let answerBody { answer = try await Data(collecting: answerBody, upTo: maxAnswer) }
        guard let header = response.headerFields[answerName],
            let signer = PeerStamp.verifyAnswer(
                header: header, requestNonce: stamp.nonce, status: response.status.code, body: answer, keyOf: { keyOf($0, answer) })
        else { throw UnauthenticatedAnswer() }
        verified(signer)
        return (response, HTTPBody(answer))
    }
}
