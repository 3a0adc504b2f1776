import Foundation
import HTTPTypes
import Hummingbird
import KlevrAPI
import KlevrCore
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// The agent's peer API, used by the other members of its zone:
///
/// - `POST /peer/v1/sync` — a secondary's sync with the primary: its reports are relayed to the manager
///   under the primary's epoch and the manager's acknowledgements passed back (the secondary keeps
///   everything until then); the answer carries the secondary's runs and cancels and the membership.
/// - `GET /peer/v1/whois` — who this agent is and whom it follows (to find the primary).
/// - `POST /peer/v1/enroll` — enrollment relayed for an agent with no manager route (the enrollment key
///   is its authentication).
///
/// Every request but enrollment must carry a valid `X-Klevr-Peer` header (zone secret HMAC).
struct PeerServer {
    let link: ZoneLink
    let managerURL: String?
    let heartbeatSeconds: Int

    func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.post("/peer/v1/sync") { request, context in try await sync(request, context) }
        router.get("/peer/v1/whois") { request, _ in
            _ = try await authenticate(request, body: Data())
            return try json(await whois())
        }
        router.post("/peer/v1/enroll") { request, context in try await enroll(request, context) }
        return router
    }

    func whois() async -> PeerWhois {
        let zone = link.zone
        let role = await zone.role
        let me = link.identity.agentId
        switch role {
        case .primary(let epoch, _):
            return PeerWhois(agentId: me, role: "primary", primary: me, primaryAddress: zone.selfAddress, epoch: epoch)
        case .candidate(let epoch):
            return PeerWhois(agentId: me, role: "candidate", primary: nil, primaryAddress: nil, epoch: epoch)
        case .follower(let primary, let epoch):
            var address: String?
            if case .peer(let known) = await zone.upstream { address = known }
            return PeerWhois(agentId: me, role: "secondary", primary: primary, primaryAddress: address, epoch: epoch)
        }
    }

    func authenticate(_ request: Request, body: Data) async throws -> String {
        guard let header = request.headers.first(where: { $0.name.canonicalName == PeerAuth.header.lowercased() })?.value,
            let sender = PeerAuth.verify(
                header: header, secret: link.identity.zonePeerSecret, method: request.method.rawValue, path: request.uri.path, body: body,
                now: Clock.nowMillis())
        else { throw HTTPError(.unauthorized, message: "peer requests need a valid X-Klevr-Peer header") }
        return sender
    }

    func sync(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        var request = request
        let buffer = try await request.collectBody(upTo: 16 << 20)
        let body = Data(buffer: buffer)
        let sender = try await authenticate(request, body: body)
        guard let sync = try? JSONDecoder().decode(SyncRequest.self, from: body) else {
            throw HTTPError(.badRequest, message: "the body is not a sync request")
        }
        guard sync.reports.allSatisfy({ $0.agentId == sender }) else {
            throw HTTPError(.forbidden, message: "a member reports for itself only")
        }
        guard case .manager = await link.zone.upstream else {
            // Not the primary: say whom we follow, so that the member can go there.
            return try json(await whois(), status: .conflict)
        }
        var acks = SyncAcks()
        // The member's report (or an empty one, its heartbeat) goes to the manager now; its outbox keeps
        // everything until these acknowledgements come back.
        let reports = sync.reports.isEmpty ? [AgentReport(agentId: sender)] : sync.reports
        do {
            acks = try await link.sync(SyncRequest(wait: false, reports: reports), timeout: .seconds(10)).acks
        } catch {
            context.logger.warning("could not relay a member's report", metadata: ["member": "\(sender)", "error": "\(error)"])
        }
        let work = await link.queues.take(sender, waitingUpTo: sync.wait ? 1.0 : 0)
        return try json(
            SyncResponse(
                acks: acks, runs: work.runs, cancels: work.cancels, heartbeatSeconds: heartbeatSeconds, membership: await link.zone.membership))
    }

    func enroll(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        guard let managerURL else { throw HTTPError(.serviceUnavailable, message: "this member cannot reach the manager") }
        var request = request
        let body = Data(buffer: try await request.collectBody(upTo: 1 << 20))
        guard let enrollment = try? JSONDecoder().decode(EnrollRequest.self, from: body) else {
            throw HTTPError(.badRequest, message: "the body is not an enrollment request")
        }
        do {
            let answer = try await JSONClient(baseURL: managerURL, http: link.http).send(
                .POST, "/api/v1/agent/enroll", body: enrollment, as: EnrollResponse.self)
            return try json(answer, status: .created)
        } catch let failure as JSONClient.Failure {
            throw HTTPError(HTTPResponse.Status(code: failure.status), message: failure.description)
        }
    }

    func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: try JSONEncoder().encode(value))))
    }
}
