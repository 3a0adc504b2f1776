import Logging
import Crypto
import Foundation
import Hummingbird
import KlevrAPI
import KlevrCore
import KlevrStore

extension Manager {
    func addAgentRoutes(to router: Router<KlevrRequestContext>) {
        router.post("/api/v1/agent/enroll") { request, _ in
            let body = try await JSONBody.decode(EnrollRequest.self, from: request)
            let now = Clock.nowMillis()
            guard Validation.isValidName(body.zone),
                let zone = try await store.validEnrollKeyZone(zoneName: body.zone, keyHash: Secrets.hash(body.enrollKey), now: now)
            else {
                logger.warning("refused an enrollment", metadata: ["zone": "\(body.zone.prefix(63))"])
                throw Problem(.unauthorized, type: "enroll-refused", detail: "the enrollment key is wrong, revoked or expired for this zone")
            }
            guard let keyData = Data(base64Encoded: body.publicKey), keyData.count == 32 else {
                throw Problem.invalid("publicKey", "must be a base64 Ed25519 public key (32 bytes)")
            }
            try Self.validate(body.facts)
            let credential = Secrets.generate(.agentCredential)
            let agentID = try await store.enrollAgent(
                zoneID: zone.id, publicKey: body.publicKey, credentialHash: Secrets.hash(credential), hostname: body.facts.hostname,
                os: body.facts.os, version: body.facts.version, addresses: body.facts.addresses, now: now)
            if let address = body.peerAddress {
                guard address.count <= 255, !address.contains(where: { $0 == " " || $0 == "/" }) else {
                    throw Problem.invalid("peerAddress", "must be host:port")
                }
                try await store.updatePeer(agentID: agentID, peerAddress: address, reachedManager: false)
            }
            logger.info("agent enrolled", metadata: ["agent.id": "\(agentID)", "zone": "\(zone.name)"])
            return try JSONBody.response(
                EnrollResponse(
                    agentId: agentID, credential: credential, zone: zone.name, heartbeatSeconds: config.heartbeatSeconds,
                    managerPublicKey: config.signingKey.publicKey.rawRepresentation.base64EncodedString(),
                    zonePeerSecret: PeerAuth.zoneSecret(managerKey: config.signingKey.rawRepresentation, zoneID: zone.id)),
                status: .created)
        }
        router.post("/api/v1/agent/sync") { request, context in
            let agent = try context.requireAgent()
            let body = try await JSONBody.decode(SyncRequest.self, from: request, limit: JSONBody.syncLimit)
            return try JSONBody.response(try await sync(agent: agent, request: body))
        }
        router.post("/api/v1/agent/lease") { request, context in
            let agent = try context.requireAgent()
            let body = try await JSONBody.decode(LeaseRequest.self, from: request)
            if let address = body.peerAddress, address.count > 255 || address.contains(" ") {
                throw Problem.invalid("peerAddress", "must be host:port")
            }
            if let priority = body.priority, !(-1000...1000).contains(priority) {
                throw Problem.invalid("priority", "must be from -1000 to 1000")
            }
            if body.peerAddress != agent.peerAddress || !agent.managerRoute || (body.priority != nil && body.priority != agent.priority) {
                try await store.updatePeer(agentID: agent.id, peerAddress: body.peerAddress, reachedManager: true, priority: body.priority)
            }
            let now = Clock.nowMillis()
            let outcome = try await store.acquireLease(zoneID: agent.zoneID, agentID: agent.id, now: now, duration: config.leaseMillis)
            switch outcome {
            case .granted(let epoch, let expiresAt, let elected):
                if elected { logger.notice("primary elected", metadata: ["zone": "\(agent.zoneName)", "agent.id": "\(agent.id)", "epoch": "\(epoch)"]) }
                return try JSONBody.response(
                    LeaseResponse(
                        granted: true, holder: agent.id, epoch: epoch, expiresAt: expiresAt, holderAddress: agent.peerAddress,
                        durationMillis: expiresAt - now))
            case .held(let holder, let epoch, let expiresAt):
                let address = try await store.agent(id: holder)?.peerAddress ?? ""
                return try JSONBody.response(
                    LeaseResponse(
                        granted: false, holder: holder, epoch: epoch, expiresAt: expiresAt, holderAddress: address, durationMillis: max(0, expiresAt - now)))
            }
        }
        router.get("/api/v1/agents") { request, context in
            _ = try context.requireUser()
            let limit = try Self.pageLimit(request)
            let zone = request.uri.queryParameters["zone"].map(String.init)
            let agents = try await store.agents(zoneName: zone, after: try Self.cursor(request), limit: limit)
            let next = agents.count == limit ? agents.last.map { Cursor(createdAt: $0.enrolledAt, id: $0.id).text } : nil
            var leaderless: [String: Bool] = [:]
            var views: [AgentView] = []
            for agent in agents {
                if leaderless[agent.zoneID] == nil { leaderless[agent.zoneID] = try await zoneUnreachable(agent.zoneID) }
                views.append(view(agent, zoneUnreachable: leaderless[agent.zoneID] ?? false))
            }
            return try JSONBody.response(Page(items: views, nextCursor: next))
        }
        router.get("/api/v1/agents/{id}") { _, context in
            _ = try context.requireUser()
            let id = try Self.id(context)
            guard let agent = try await store.agent(id: id) else { throw Problem.notFound("no agent \(id)") }
            return try JSONBody.response(view(agent, zoneUnreachable: try await zoneUnreachable(agent.zoneID)))
        }
        router.post("/api/v1/agents/{id}/retire") { _, context in
            _ = try context.requireUser(.operator_)
            let id = try Self.id(context)
            try await store.retireAgent(id: id, now: Clock.nowMillis())
            await hub.signal([Self.agentKey(id)])
            guard let agent = try await store.agent(id: id) else { throw Problem.notFound("no agent \(id)") }
            return try JSONBody.response(view(agent))
        }
    }

    static func validate(_ facts: HostFacts) throws {
        var errors: [ProblemDocument.FieldError] = []
        if facts.hostname.isEmpty || facts.hostname.count > 255 { errors.append(.init(field: "facts.hostname", message: "1 to 255 characters")) }
        if facts.os.count > 255 { errors.append(.init(field: "facts.os", message: "at most 255 characters")) }
        if facts.version.count > 64 { errors.append(.init(field: "facts.version", message: "at most 64 characters")) }
        if facts.addresses.count > 64 || facts.addresses.contains(where: { $0.count > 64 }) {
            errors.append(.init(field: "facts.addresses", message: "at most 64 addresses of 64 characters"))
        }
        if !errors.isEmpty { throw Problem.invalid(errors) }
    }

    /// Whether a zone that had a primary has none now: its agents' silence is then the zone's, not theirs.
    func zoneUnreachable(_ zoneID: String) async throws -> Bool {
        guard let lease = try await store.lease(zoneID: zoneID) else { return false }
        return lease.expiresAt <= Clock.nowMillis()
    }

    func view(_ agent: AgentRecord, zoneUnreachable: Bool = false) -> AgentView {
        let liveness = Liveness.evaluate(
            lastSeenMillis: agent.lastSeenAt, nowMillis: Clock.nowMillis(), heartbeatMillis: Int64(config.heartbeatSeconds) * 1000,
            managerStartedMillis: startedAt, retired: agent.retiredAt != nil)
        var reason: String?
        if case .offline(let why) = liveness { reason = zoneUnreachable ? "zone unreachable" : why }
        return AgentView(
            id: agent.id, zone: agent.zoneName, hostname: agent.hostname, os: agent.os, version: agent.version,
            addresses: agent.addresses, status: liveness.status, statusReason: reason, lastSeenAt: agent.lastSeenAt,
            enrolledAt: agent.enrolledAt)
    }

    func isOnline(_ agent: AgentRecord) -> Bool {
        view(agent).status == "online"
    }
}
