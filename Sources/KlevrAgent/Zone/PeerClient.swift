import AsyncHTTPClient
import Crypto
import Foundation
import HTTPTypes
import KlevrAPI
import KlevrClient
import KlevrCore
import KlevrPeerAPI
import NIOCore
import OpenAPIAsyncHTTPClient
import OpenAPIRuntime

/// Calls to another member's peer API through the generated client (`KlevrPeerAPI`): every request is
/// signed with this agent's key (``PeerStamping``), and every answer must be signed by the member this
/// agent meant to reach, bound to the request's nonce; an answer that is not is an error, whatever it says.
struct PeerClient: Sendable {
    enum Failure: Error, CustomStringConvertible {
        /// The answer was not signed by a member the caller trusts.
        case unauthenticatedAnswer(String)
        /// A signed answer that is not a success: the status and the member's `detail`.
        case status(Int, String)
        /// An address that does not make a URL.
        case badAddress(String)

        var description: String {
            switch self {
            case .unauthenticatedAnswer(let address): "the answer from \(address) is not signed by a member of the zone"
            case .status(let code, let detail): "HTTP \(code): \(detail.prefix(300))"
            case .badAddress(let address): "'\(address.prefix(100))' is not a peer address"
            }
        }
    }

    /// What a primary answers a member's sync.
    enum SyncAnswer: Sendable {
        /// The member's work and acknowledgements.
        case synced(SyncResponse)
        /// The answering agent is not the primary: whom it follows, with the membership it holds.
        case notPrimary(KlevrPeerAPI.Components.Schemas.PeerWhois)
    }

    let address: String
    let http: HTTPClient
    let agentID: String
    let zoneID: String
    let key: Curve25519.Signing.PrivateKey
    let clock: ManagerClock

    /// The largest answer accepted from a peer.
    static let maxAnswerBytes = 32 << 20

    /// A sync with the primary at ``address``; the answer must be signed by the agent `keyOf` knows.
    func sync(
        _ request: SyncRequest, timeout: TimeAmount, keyOf: @escaping @Sendable (String, Data) -> Curve25519.Signing.PublicKey?
    ) async throws -> SyncAnswer {
        let output = try await call(timeout: timeout, keyOf: keyOf) { try await $0.peerSync(body: .json(request)) }.output
        switch output {
        case .ok(let ok): return .synced(try ok.body.json)
        case .conflict(let conflict): return .notPrimary(try conflict.body.json)
        case .badRequest(let refused): throw Failure.status(400, try refused.body.json.detail)
        case .unauthorized(let refused): throw Failure.status(401, try refused.body.json.detail)
        case .forbidden(let refused): throw Failure.status(403, try refused.body.json.detail)
        case .contentTooLarge(let refused): throw Failure.status(413, try refused.body.json.detail)
        case .undocumented(let status, _): throw Failure.status(status, "")
        }
    }

    /// Who the member at ``address`` is; returns the signer of the answer with it.
    func whois(keyOf: @escaping @Sendable (String, Data) -> Curve25519.Signing.PublicKey?) async throws
        -> (signer: String, value: KlevrPeerAPI.Components.Schemas.PeerWhois)
    {
        let (output, signer) = try await call(timeout: .seconds(2), keyOf: keyOf) { try await $0.peerWhois() }
        switch output {
        case .ok(let ok): return (signer, try ok.body.json)
        case .undocumented(let status, _): throw Failure.status(status, "")
        }
    }

    /// Runs `body` with a client whose request is stamped and whose answer is verified; returns the
    /// output and who signed the answer.
    private func call<Output: Sendable>(
        timeout: TimeAmount, keyOf: @escaping @Sendable (String, Data) -> Curve25519.Signing.PublicKey?,
        _ body: (KlevrPeerAPI.Client) async throws -> Output
    ) async throws -> (output: Output, signer: String) {
        let signer = Locked<String?>(nil)
        let stamping = PeerStamping(
            agentID: agentID, zoneID: zoneID, key: key, time: { [clock] in clock.now() }, maxBody: PeerServer.maxSyncBody,
            maxAnswer: Self.maxAnswerBytes, keyOf: keyOf, verified: { who in signer.withLock { $0 = who } })
        let client = KlevrPeerAPI.Client(
            serverURL: try Self.url(address), transport: AsyncHTTPClientTransport(configuration: .init(client: http, timeout: timeout)),
            middlewares: [stamping])
        let output: Output
        do {
            output = try await body(client)
        } catch {
            let cause = ManagerClient.cause(of: error)
            if cause is PeerStamping.UnauthenticatedAnswer { throw Failure.unauthenticatedAnswer(address) }
            throw cause
        }
        guard let who = signer.withLock({ $0 }) else { throw Failure.unauthenticatedAnswer(address) }
        return (output, who)
    }

    // MARK: - The routes for agents that are not members yet

    /// The manager's keys as the member at `address` holds them (no stamp, and no answer signature to
    /// check: a new agent knows no member's key; it checks the manager's signatures inside instead).
    static func hello(address: String, http: HTTPClient, timeout: TimeAmount) async throws -> ManagerHello {
        let output: KlevrPeerAPI.Operations.PeerHello.Output
        do {
            output = try await client(address, http: http, timeout: timeout).peerHello()
        } catch {
            throw ManagerClient.cause(of: error)
        }
        switch output {
        case .ok(let ok): return try ok.body.json
        case .serviceUnavailable: throw Failure.status(503, "the member does not know the manager's seal key")
        case .undocumented(let status, _): throw Failure.status(status, "")
        }
    }

    /// A sealed enrollment relayed by the member at `address`; the answer is sealed to the new agent.
    static func enroll(_ sealed: SealedEnrollment, address: String, http: HTTPClient, timeout: TimeAmount) async throws -> SealedBox {
        let output: KlevrPeerAPI.Operations.PeerEnroll.Output
        do {
            output = try await client(address, http: http, timeout: timeout).peerEnroll(body: .json(sealed))
        } catch {
            throw ManagerClient.cause(of: error)
        }
        switch output {
        case .created(let created): return try created.body.json
        case .badRequest(let refused): throw Failure.status(400, try refused.body.json.detail)
        case .unauthorized(let refused): throw Failure.status(401, try refused.body.json.detail)
        case .contentTooLarge(let refused): throw Failure.status(413, try refused.body.json.detail)
        case .unprocessableContent(let refused): throw Failure.status(422, try refused.body.json.detail)
        case .badGateway(let refused): throw Failure.status(502, try refused.body.json.detail)
        case .serviceUnavailable(let refused): throw Failure.status(503, try refused.body.json.detail)
        case .undocumented(let status, _): throw Failure.status(status, "")
        }
    }

    private static func client(_ address: String, http: HTTPClient, timeout: TimeAmount) throws -> KlevrPeerAPI.Client {
        KlevrPeerAPI.Client(serverURL: try url(address), transport: AsyncHTTPClientTransport(configuration: .init(client: http, timeout: timeout)))
    }

    static func url(_ address: String) throws -> URL {
        guard Validation.isValidPeerAddress(address), let url = URL(string: "http://\(address)") else { throw Failure.badAddress(address) }
        return url
    }
}
