import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import KlevrAPI
import KlevrClient
import KlevrPeerAPI
import KlevrCore
import Logging
import NIOCore
import NIOFoundationCompat
import OpenAPIHummingbird
import OpenAPIRuntime
import Synchronization

/// The agent's peer API, used by the other members of its zone (docs/security.md):
///
/// - `POST /peer/v1/sync` — a member's exchange with the primary: its signed report is relayed to the
///   manager with the other members' and the manager-signed acknowledgements passed back; the answer
///   (held until there is work, up to the member's `holdMillis`) carries the member's runs and cancels
///   and the manager-signed membership when the member's is outdated.
/// - `GET /peer/v1/whois` — who this agent is, whom it follows, and the membership it holds.
/// - `GET /peer/v1/hello` — the manager's public keys (signed by the manager) and clock estimate, for a
///   new agent to check against the pin of its enrollment key.
/// - `POST /peer/v1/enroll` — a sealed enrollment relayed to the manager (readable by the manager only).
///
/// The operations are the generated server of `KlevrPeerAPI` (``PeerAPI``). `sync` needs an
/// `X-Klevr-Peer` stamp signed by a member of the current manager-signed membership, fresh in the
/// manager's time and never seen before; ``PeerDoor`` checks it before the body is read. Every answer
/// carries `X-Klevr-Peer-Answer`, this agent's signature bound to the request's nonce.
struct PeerServer {
    let link: ZoneLink
    let managerURL: String?
    let heartbeatSeconds: Int
    let batcher: ReportBatcher
    let nonces = Locked(NonceCache())

    /// The largest peer sync body (a member's report is at most about 1 MiB of output).
    static let maxSyncBody = 8 << 20
    static let maxEnrollBody = 64 << 10

    func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        do {
            try PeerAPI(server: self).registerHandlers(on: router, middlewares: [PeerDoor(server: self)])
        } catch {
            link.logger.error("the peer API's routes could not be registered", metadata: ["error": "\(error)"])
        }
        return router
    }

    func whois() async -> KlevrPeerAPI.Components.Schemas.PeerWhois {
        let zone = link.zone
        let role = await zone.role
        let me = link.identity.agentId
        let blob = await zone.signedMembership
        let time = link.clock.now()
        switch role {
        case .primary(let epoch, _):
            return .init(
                agentId: me, role: .primary, primary: me, primaryAddress: zone.selfAddress, epoch: epoch, signedMembership: blob, managerTime: time)
        case .candidate(let epoch):
            return .init(agentId: me, role: .candidate, epoch: epoch, signedMembership: blob, managerTime: time)
        case .follower(let primary, let epoch):
            var address: String?
            if case .peer(let known, _) = await zone.upstream { address = known }
            return .init(
                agentId: me, role: .secondary, primary: primary, primaryAddress: address, epoch: epoch, signedMembership: blob, managerTime: time)
        }
    }

    /// The manager's keys as this member got them at enrollment; nil when it does not know the seal key.
    func hello() -> ManagerHello? {
        guard let sealKey = link.identity.managerSealKey, let signature = link.identity.sealKeySignature else { return nil }
        return ManagerHello(
            managerPublicKey: link.identity.managerPublicKey, managerSealKey: sealKey, sealKeySignature: signature, managerTime: link.clock.now())
    }

    /// Why a request is refused, said to the caller without detail an attacker could use.
    struct Refused: Error {
        var status: HTTPResponse.Status
        var message: String
    }

    /// Checks the stamp (before the body is read): a current member, this zone, fresh in the manager's
    /// time, a nonce never seen, a valid signature. Returns the stamp.
    func authenticate(_ request: HTTPRequest) async throws -> PeerStamp {
        guard let value = PeerDoor.stampName.flatMap({ request.headerFields[$0] }), let stamp = PeerStamp(header: value) else {
            throw Refused(status: .unauthorized, message: "peer requests need a valid X-Klevr-Peer stamp")
        }
        guard stamp.zone == link.zoneID, let key = await link.zone.key(of: stamp.sender) else {
            throw Refused(status: .unauthorized, message: "the sender is not a member of this zone's current membership")
        }
        let path = request.path.flatMap { $0.split(separator: "?", omittingEmptySubsequences: false).first.map(String.init) } ?? "/"
        guard stamp.verifies(method: request.method.rawValue, path: path, key: key) else {
            throw Refused(status: .unauthorized, message: "the stamp's signature does not verify")
        }
        let now = link.clock.now()
        guard nonces.withLock({ $0.admit(stamp.nonce, sender: stamp.sender, time: stamp.time, now: now) }) else {
            throw Refused(status: .unauthorized, message: "the request is stale or a replay (times are the manager's)")
        }
        return stamp
    }

    /// Reads a body of at most `limit` bytes (refusing a larger declared length before reading) and
    /// checks it against the stamp's digest.
    static func read(_ body: HTTPBody?, of request: HTTPRequest, limit: Int, digest: String?) async throws -> Data {
        if let length = request.headerFields[.contentLength].flatMap({ Int($0) }), length > limit {
            throw Refused(status: .contentTooLarge, message: "the body is larger than \(limit) bytes")
        }
        let data: Data
        do {
            if let body { data = try await Data(collecting: body, upTo: limit) } else { data = Data() }
        } catch {
            throw Refused(status: .contentTooLarge, message: "the body is larger than \(limit) bytes")
        }
        if let digest, PeerStamp.digest(of: data) != digest {
            throw Refused(status: .unauthorized, message: "the body does not match the stamp's digest")
        }
        return data
    }
}

/// Who sent the peer request being handled: set by ``PeerDoor`` once the stamp verified.
enum PeerScope {
    @TaskLocal static var sender: String?
}

/// The peer API's operations (the generated `APIProtocol` of `KlevrPeerAPI`).
struct PeerAPI: KlevrPeerAPI.APIProtocol {
    let server: PeerServer
    var link: ZoneLink { server.link }

    func peerSync(_ input: KlevrPeerAPI.Operations.PeerSync.Input) async throws -> KlevrPeerAPI.Operations.PeerSync.Output {
        guard let sender = PeerScope.sender else {
            return .unauthorized(.init(body: .json(.init(detail: "peer requests need a valid X-Klevr-Peer stamp"))))
        }
        guard case .json(let sync) = input.body, sync.reports.isEmpty, (sync.relayed?.count ?? 0) <= 1 else {
            return .badRequest(.init(body: .json(.init(detail: "the body is not a member's sync request"))))
        }
        // A member reports for itself only: each relayed report must be signed by the sender.
        let senderKey = await link.zone.key(of: sender)
        for blob in sync.relayed ?? [] {
            guard blob.signer == sender, let senderKey,
                let report = try? blob.open(AgentReport.self, domain: SignedBlob.Domain.report, key: senderKey), report.agentId == sender
            else {
                return .forbidden(.init(body: .json(.init(detail: "a member relays only its own signed report"))))
            }
        }
        guard case .manager = await link.zone.upstream else {
            // Not the primary: say whom we follow (with the membership), so that the member can go there.
            return .conflict(.init(body: .json(await server.whois())))
        }
        if await link.queues.heard(sender) {
            // A member the manager does not count live yet: tell it now, so that its queued runs come.
            link.nudge()
        }
        var signedAcks: SignedBlob?
        if let blob = sync.relayed?.first {
            signedAcks = await server.batcher.submit(blob, from: sender)
        }
        let hold = sync.wait && signedAcks == nil ? Double(min(max(sync.holdMillis ?? 1_000, 0), 30_000)) / 1000 : 0
        let work = await link.queues.take(sender, waitingUpTo: hold)
        let digest = await link.zone.membershipDigest
        let membership = digest == sync.membershipDigest ? nil : await link.zone.signedMembership
        return .ok(
            .init(
                body: .json(
                    SyncResponse(
                        acks: SyncAcks(), runs: work.runs, cancels: work.cancels, heartbeatSeconds: server.heartbeatSeconds,
                        signedMembership: membership, managerTime: link.clock.now(), signedAcks: signedAcks))))
    }

    func peerWhois(_ input: KlevrPeerAPI.Operations.PeerWhois.Input) async throws -> KlevrPeerAPI.Operations.PeerWhois.Output {
        .ok(.init(body: .json(await server.whois())))
    }

    func peerHello(_ input: KlevrPeerAPI.Operations.PeerHello.Input) async throws -> KlevrPeerAPI.Operations.PeerHello.Output {
        guard let hello = server.hello() else { return .serviceUnavailable(.init()) }
        return .ok(.init(body: .json(hello)))
    }

    func peerEnroll(_ input: KlevrPeerAPI.Operations.PeerEnroll.Input) async throws -> KlevrPeerAPI.Operations.PeerEnroll.Output {
        guard let managerURL = server.managerURL else {
            return .serviceUnavailable(.init(body: .json(.init(detail: "this member cannot reach the manager"))))
        }
        guard case .json(let sealed) = input.body else {
            return .badRequest(.init(body: .json(.init(detail: "the body is not a sealed enrollment"))))
        }
        // The relay sees only ciphertext both ways; the manager's answer is sealed to the new agent.
        do {
            let box = try await ManagerLink(server: managerURL, credential: nil, http: link.http).enroll(sealed, timeout: .seconds(20))
            return .created(.init(body: .json(box)))
        } catch {
            guard let refusal = ManagerLink.refusal(in: error) else {
                return .badGateway(.init(body: .json(.init(detail: "the manager could not be reached"))))
            }
            let detail = KlevrPeerAPI.Components.Schemas.Detail(detail: refusal.description)
            switch refusal.status {
            case 400: return .badRequest(.init(body: .json(detail)))
            case 401: return .unauthorized(.init(body: .json(detail)))
            case 413: return .contentTooLarge(.init(body: .json(detail)))
            case 422: return .unprocessableContent(.init(body: .json(detail)))
            default: return .badGateway(.init(body: .json(detail)))
            }
        }
    }
}

/// The peer API's front door, around every generated handler: checks the stamp of a sync before its
/// body is read, reads bodies up to their limit (and a sync's against the stamp's digest), turns
/// refusals and bodies the generated code cannot decode into `{"detail": …}` answers, and signs every
/// answer (`X-Klevr-Peer-Answer`) bound to the request's nonce.
struct PeerDoor: ServerMiddleware {
    let server: PeerServer

    static let stampName = HTTPField.Name(PeerStamp.header)
    static let answerName = HTTPField.Name(PeerStamp.answerHeader)
    static let nonceName = HTTPField.Name("X-Klevr-Nonce")

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, metadata: ServerRequestMetadata, operationID: String,
        next: (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        // The nonce the answer is bound to: the stamp's, or the caller's `X-Klevr-Nonce` on the open routes.
        var nonce =
            Self.stampName.flatMap { request.headerFields[$0] }.flatMap { PeerStamp(header: $0)?.nonce }
            ?? Self.nonceName.flatMap { request.headerFields[$0] }.map { String($0.prefix(64)) } ?? ""
        var status: HTTPResponse.Status
        var headers = HTTPFields()
        var answer: Data
        do {
            var sender: String?
            var forwarded = body
            switch operationID {
            case "peerSync":
                let stamp = try await server.authenticate(request)
                nonce = stamp.nonce
                forwarded = HTTPBody(try await PeerServer.read(body, of: request, limit: PeerServer.maxSyncBody, digest: stamp.digest))
                sender = stamp.sender
            case "peerEnroll":
                forwarded = HTTPBody(try await PeerServer.read(body, of: request, limit: PeerServer.maxEnrollBody, digest: nil))
            default:
                break
            }
            let (response, responseBody) = try await PeerScope.$sender.withValue(sender) { try await next(request, forwarded, metadata) }
            status = response.status
            headers = response.headerFields
            if let responseBody { answer = try await Data(collecting: responseBody, upTo: PeerClient.maxAnswerBytes) } else { answer = Data() }
        } catch let refused as PeerServer.Refused {
            server.link.logger.info("refused a peer request", metadata: ["reason": "\(refused.message)"])
            (status, answer) = (refused.status, try Self.detail(refused.message))
            headers[.contentType] = "application/json"
        } catch {
            // What the generated code could not read (not JSON, a wrong shape, a missing field) is the
            // caller's fault; anything else is this agent's.
            if Self.isDecodingFailure(error) {
                (status, answer) = (.badRequest, try Self.detail("the body is not a valid \(operationID) request"))
            } else {
                server.link.logger.error("a peer request failed", metadata: ["operation": "\(operationID)", "error": "\(error)"])
                (status, answer) = (.internalServerError, try Self.detail("internal error; see the agent's log"))
            }
            headers[.contentType] = "application/json"
        }
        if let name = Self.answerName {
            headers[name] = try PeerStamp.signAnswer(
                requestNonce: nonce, status: Int(status.code), body: answer, sender: server.link.identity.agentId, key: server.link.keys.signing)
        }
        return (HTTPResponse(status: status, headerFields: headers), HTTPBody(answer))
    }

    static func detail(_ message: String) throws -> Data {
        try JSONEncoder().encode(KlevrPeerAPI.Components.Schemas.Detail(detail: message))
    }

    /// Whether `error` is the generated code's failure to read the request (before any handler ran).
    static func isDecodingFailure(_ error: any Error) -> Bool {
        guard let server = error as? ServerError else { return false }
        return server.operationInput == nil
    }
}
