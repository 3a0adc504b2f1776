import AsyncHTTPClient
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import KlevrAPI
import KlevrCore
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
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
/// `sync` needs an `X-Klevr-Peer` stamp signed by a member of the current manager-signed membership,
/// fresh in the manager's time and never seen before; it is checked before the body is read. Every
/// answer carries `X-Klevr-Peer-Answer`, this agent's signature bound to the request's nonce.
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
        router.post("/peer/v1/sync") { request, context in try await sync(request, context) }
        router.get("/peer/v1/whois") { request, _ in
            try answer(await whois(), to: request)
        }
        router.get("/peer/v1/hello") { request, _ in
            try answer(try hello(), to: request)
        }
        router.post("/peer/v1/enroll") { request, context in try await enroll(request, context) }
        return router
    }

    func whois() async -> PeerWhois {
        let zone = link.zone
        let role = await zone.role
        let me = link.identity.agentId
        let blob = await zone.signedMembership
        let time = link.clock.now()
        switch role {
        case .primary(let epoch, _):
            return PeerWhois(
                agentId: me, role: "primary", primary: me, primaryAddress: zone.selfAddress, epoch: epoch, signedMembership: blob, managerTime: time)
        case .candidate(let epoch):
            return PeerWhois(agentId: me, role: "candidate", primary: nil, primaryAddress: nil, epoch: epoch, signedMembership: blob, managerTime: time)
        case .follower(let primary, let epoch):
            var address: String?
            if case .peer(let known, _) = await zone.upstream { address = known }
            return PeerWhois(
                agentId: me, role: "secondary", primary: primary, primaryAddress: address, epoch: epoch, signedMembership: blob, managerTime: time)
        }
    }

    func hello() throws -> ManagerHello {
        guard let sealKey = link.identity.managerSealKey, let signature = link.identity.sealKeySignature else {
            throw HTTPError(.serviceUnavailable, message: "this member does not know the manager's seal key")
        }
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
    func authenticate(_ request: Request) async throws -> PeerStamp {
        guard let value = Self.field(PeerStamp.header, of: request), let stamp = PeerStamp(header: value) else {
            throw Refused(status: .unauthorized, message: "peer requests need a valid X-Klevr-Peer stamp")
        }
        guard stamp.zone == link.zoneID, let key = await link.zone.key(of: stamp.sender) else {
            throw Refused(status: .unauthorized, message: "the sender is not a member of this zone's current membership")
        }
        guard stamp.verifies(method: request.method.rawValue, path: request.uri.path, key: key) else {
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
    func body(of request: Request, limit: Int, stamp: PeerStamp?) async throws -> Data {
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            throw Refused(status: .contentTooLarge, message: "the body is larger than \(limit) bytes")
        }
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: limit)
        } catch {
            throw Refused(status: .contentTooLarge, message: "the body is larger than \(limit) bytes")
        }
        let data = Data(buffer: buffer)
        if let stamp, PeerStamp.digest(of: data) != stamp.digest {
            throw Refused(status: .unauthorized, message: "the body does not match the stamp's digest")
        }
        return data
    }

    func sync(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let stamp: PeerStamp
        let data: Data
        do {
            stamp = try await authenticate(request)
            data = try await body(of: request, limit: Self.maxSyncBody, stamp: stamp)
        } catch let refused as Refused {
            context.logger.info("refused a peer request", metadata: ["reason": "\(refused.message)"])
            return try answer(["detail": refused.message], status: refused.status, to: request)
        }
        let sender = stamp.sender
        guard let sync = try? JSONDecoder().decode(SyncRequest.self, from: data), sync.reports.isEmpty, (sync.relayed?.count ?? 0) <= 1 else {
            return try answer(["detail": "the body is not a member's sync request"], status: .badRequest, to: request, nonce: stamp.nonce)
        }
        // A member reports for itself only: each relayed report must be signed by the sender.
        let senderKey = await link.zone.key(of: sender)
        for blob in sync.relayed ?? [] {
            guard blob.signer == sender, let senderKey,
                let report = try? blob.open(AgentReport.self, domain: SignedBlob.Domain.report, key: senderKey), report.agentId == sender
            else {
                return try answer(["detail": "a member relays only its own signed report"], status: .forbidden, to: request, nonce: stamp.nonce)
            }
        }
        guard case .manager = await link.zone.upstream else {
            // Not the primary: say whom we follow (with the membership), so that the member can go there.
            return try answer(await whois(), status: .conflict, to: request, nonce: stamp.nonce)
        }
        if await link.queues.heard(sender) {
            // A member the manager does not count live yet: tell it now, so that its queued runs come.
            link.nudge()
        }
        var signedAcks: SignedBlob?
        if let blob = sync.relayed?.first {
            signedAcks = await batcher.submit(blob, from: sender)
        }
        let hold = sync.wait && signedAcks == nil ? Double(min(max(sync.holdMillis ?? 1_000, 0), 30_000)) / 1000 : 0
        let work = await link.queues.take(sender, waitingUpTo: hold)
        let digest = await link.zone.membershipDigest
        let membership = digest == sync.membershipDigest ? nil : await link.zone.signedMembership
        return try answer(
            SyncResponse(
                acks: SyncAcks(), runs: work.runs, cancels: work.cancels, heartbeatSeconds: heartbeatSeconds, signedMembership: membership,
                managerTime: link.clock.now(), signedAcks: signedAcks),
            to: request, nonce: stamp.nonce)
    }

    func enroll(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        guard let managerURL else {
            return try answer(["detail": "this member cannot reach the manager"], status: .serviceUnavailable, to: request)
        }
        let data: Data
        do {
            data = try await body(of: request, limit: Self.maxEnrollBody, stamp: nil)
        } catch let refused as Refused {
            return try answer(["detail": refused.message], status: refused.status, to: request)
        }
        guard let sealed = try? JSONDecoder().decode(SealedEnrollment.self, from: data) else {
            return try answer(["detail": "the body is not a sealed enrollment"], status: .badRequest, to: request)
        }
        // The relay sees only ciphertext both ways; the manager's answer is sealed to the new agent.
        do {
            let box = try await JSONClient(baseURL: managerURL, http: link.http).send(
                .POST, "/api/v1/agent/enroll-sealed", body: sealed, as: SealedBox.self, timeout: .seconds(20))
            return try answer(box, status: .created, to: request)
        } catch let failure as JSONClient.Failure {
            return try answer(
                ["detail": failure.description], status: HTTPResponse.Status(code: failure.status == 0 ? 502 : failure.status), to: request)
        } catch {
            return try answer(["detail": "the manager could not be reached"], status: .badGateway, to: request)
        }
    }

    /// A request header by name (compared by canonical name; no force unwrap of a field name).
    static func field(_ name: String, of request: Request) -> String? {
        let canonical = name.lowercased()
        return request.headers.first { $0.name.canonicalName == canonical }?.value
    }

    /// `X-Klevr-Peer-Answer` as a field name (a valid token, so never nil; an answer without it is refused
    /// by every peer anyway).
    static let answerHeaderName = HTTPField.Name(PeerStamp.answerHeader)

    /// A JSON answer signed by this agent, bound to the request's nonce (from its stamp, or from
    /// `X-Klevr-Nonce` for the unauthenticated routes).
    func answer(_ value: some Encodable, status: HTTPResponse.Status = .ok, to request: Request, nonce: String? = nil) throws -> Response {
        let body = try JSONEncoder().encode(value)
        var headers: HTTPFields = [.contentType: "application/json"]
        let requestNonce =
            nonce ?? Self.field(PeerStamp.header, of: request).flatMap { PeerStamp(header: $0)?.nonce }
            ?? Self.field("X-Klevr-Nonce", of: request).map { String($0.prefix(64)) } ?? ""
        if let name = Self.answerHeaderName {
            headers[name] = try PeerStamp.signAnswer(
                requestNonce: requestNonce, status: Int(status.code), body: body, sender: link.identity.agentId, key: link.keys.signing)
        }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}
