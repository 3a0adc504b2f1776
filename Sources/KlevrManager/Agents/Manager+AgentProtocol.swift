import Crypto
import Foundation
import KlevrAPI
import KlevrCore
import KlevrStore
import Logging

/// The agent protocol's logic: the manager's keys, enrollment, the sealed enrollment and the zone
/// lease (the sync exchange is in `Manager+Sync.swift`). `ManagerAPI+AgentProtocol.swift` serves it.
extension Manager {
    /// An enrollment sealed to the manager's X25519 key, opened, performed, and answered sealed to the
    /// agent's key, signed by the manager.
    func enrollSealed(_ sealed: SealedEnrollment) async throws -> SealedBox {
        let opened: EnrollRequest
        do {
            let bytes = try Sealing.open(sealed.box, with: sealKey, context: SealedEnrollment.requestContext)
            opened = try JSONDecoder().decode(EnrollRequest.self, from: bytes)
        } catch {
            // Like a wrong proof: the box is what authenticates the request, and one that does not
            // open (or holds no enrollment) is refused, not "invalid".
            throw Problem.enrollRefused("the box does not open with the manager's seal key as an enrollment request")
        }
        guard let agentSealKey = Keys.agreement(opened.sealKey) else {
            throw Problem.invalid("sealKey", "must be a base64 X25519 public key (32 bytes)")
        }
        let answer = try await enroll(opened)
        let signed = try SignedBlob.sign(answer, domain: SignedBlob.Domain.enrollAnswer, signer: "manager", key: config.signingKey)
        return try Sealing.seal(try JSONEncoder().encode(signed), to: agentSealKey, context: SealedEnrollment.answerContext)
    }

    /// Grants, renews or refuses the zone's primary lease to `agent`, recording its peer address and
    /// priority for the membership list.
    func lease(agent: AgentRecord, request body: LeaseRequest) async throws -> LeaseResponse {
        if let address = body.peerAddress, !Validation.isValidPeerAddress(address) {
            throw Problem.invalid("peerAddress", "must be host:port (a host name, IPv4 or [IPv6] address, and a port)")
        }
        if let priority = body.priority, !(-1000...1000).contains(priority) {
            throw Problem.invalid("priority", "must be from -1000 to 1000")
        }
        if body.peerAddress != agent.peerAddress || !agent.managerRoute || (body.priority != nil && body.priority != agent.priority) {
            try await store.updatePeer(agentID: agent.id, peerAddress: body.peerAddress, reachedManager: true, priority: body.priority)
            await zoneMembers.invalidate(agent.zoneID)
        }
        let now = Clock.nowMillis()
        let outcome = try await store.acquireLease(zoneID: agent.zoneID, agentID: agent.id, now: now, duration: config.leaseMillis)
        switch outcome {
        case .granted(let epoch, let expiresAt, let elected):
            if elected { logger.notice("primary elected", metadata: ["zone": "\(agent.zoneName)", "agent.id": "\(agent.id)", "epoch": "\(epoch)"]) }
            return LeaseResponse(
                granted: true, holder: agent.id, epoch: epoch, expiresAt: expiresAt, holderAddress: agent.peerAddress,
                durationMillis: expiresAt - now, managerTime: Clock.nowMillis())
        case .held(let holder, let epoch, let expiresAt):
            let address = try await store.agent(id: holder)?.peerAddress ?? ""
            return LeaseResponse(
                granted: false, holder: holder, epoch: epoch, expiresAt: expiresAt, holderAddress: address, durationMillis: max(0, expiresAt - now),
                managerTime: Clock.nowMillis())
        }
    }

    /// The manager's X25519 key (derived from its signing key).
    var sealKey: Curve25519.KeyAgreement.PrivateKey { Keys.managerSealKey(from: config.signingKey) }

    func hello() throws -> ManagerHello {
        let sealPublic = sealKey.publicKey.rawRepresentation.base64EncodedString()
        return ManagerHello(
            managerPublicKey: config.signingKey.publicKey.rawRepresentation.base64EncodedString(), managerSealKey: sealPublic,
            sealKeySignature: try config.signingKey.signature(for: ManagerHello.sealKeyStatement(sealPublic)).base64EncodedString(),
            managerTime: Clock.nowMillis())
    }

    /// How far an enrollment statement's time may be from the manager's clock.
    static let enrollStatementWindow: Int64 = 10 * 60_000

    /// Enrolls an agent that proved it holds the private key of the public key it presents.
    func enroll(_ body: EnrollRequest) async throws -> EnrollResponse {
        let now = Clock.nowMillis()
        guard Validation.isValidName(body.zone), body.enrollKey.utf8.count <= 256,
            let zone = try await store.validEnrollKeyZone(zoneName: body.zone, keyHash: Secrets.hash(body.enrollKey), now: now)
        else {
            logger.warning("refused an enrollment", metadata: ["zone": "\(body.zone.prefix(63))"])
            throw Problem.enrollRefused("the enrollment key is wrong, revoked or expired for this zone")
        }
        guard let publicKey = Keys.signing(body.publicKey) else {
            throw Problem.invalid("publicKey", "must be a base64 Ed25519 public key (32 bytes)")
        }
        let sealKey = body.sealKey
        guard Keys.agreement(sealKey) != nil else {
            throw Problem.invalid("sealKey", "must be a base64 X25519 public key (32 bytes)")
        }
        let proofTime = body.proofTime
        guard let proof = Data(base64Encoded: body.proof), publicKey.isValidSignature(proof, for: body.statement())
        else {
            logger.warning("refused an enrollment without proof of possession", metadata: ["zone": "\(body.zone.prefix(63))"])
            throw Problem.enrollRefused("the enrollment must be signed with the private key of 'publicKey' (proof over the enrollment statement)")
        }
        // Compared without arithmetic on the caller's value (no overflow whatever it sends).
        guard proofTime >= now - Self.enrollStatementWindow, proofTime <= now + Self.enrollStatementWindow else {
            throw Problem.enrollRefused("the enrollment statement's time is more than 10 minutes from the manager's clock; ask /api/v1/agent/hello for it")
        }
        try Self.validate(body.facts)
        if let address = body.peerAddress {
            guard Validation.isValidPeerAddress(address) else {
                throw Problem.invalid("peerAddress", "must be host:port (a host name, IPv4 or [IPv6] address, and a port)")
            }
        }
        let credential = Secrets.generate(.agentCredential)
        let agentID: String
        do {
            agentID = try await store.enrollAgent(
                zoneID: zone.id, publicKey: body.publicKey, sealKey: sealKey, proofTime: proofTime, credentialHash: Secrets.hash(credential),
                hostname: body.facts.hostname, os: body.facts.os, version: body.facts.version, addresses: body.facts.addresses,
                labels: body.facts.labels?.additionalProperties, now: now)
        } catch StoreError.conflict(let message) {
            throw Problem.enrollRefused(message)
        }
        if let address = body.peerAddress {
            try await store.updatePeer(agentID: agentID, peerAddress: address, reachedManager: false)
        }
        logger.info("agent enrolled", metadata: ["agent.id": "\(agentID)", "zone": "\(zone.name)"])
        // The zone's primary answers its held poll at once: the new membership reaches the members.
        await zoneMembers.invalidate(zone.id)
        await hub.signal([Self.zoneKey(zone.id)])
        let hello = try hello()
        return EnrollResponse(
            agentId: agentID, credential: credential, zone: zone.name, zoneId: zone.id, heartbeatSeconds: config.heartbeatSeconds,
            managerPublicKey: hello.managerPublicKey, managerSealKey: hello.managerSealKey, sealKeySignature: hello.sealKeySignature,
            managerTime: Clock.nowMillis())
    }

    static func validate(_ facts: HostFacts) throws {
        var errors: [ProblemDocument.FieldError] = []
        // Lengths in code points, as the document's maxLength counts them.
        if !(1...255).contains(facts.hostname.unicodeScalars.count) { errors.append(.init(field: "facts.hostname", message: "1 to 255 characters")) }
        if facts.os.unicodeScalars.count > 255 { errors.append(.init(field: "facts.os", message: "at most 255 characters")) }
        if facts.version.unicodeScalars.count > 64 { errors.append(.init(field: "facts.version", message: "at most 64 characters")) }
        if facts.addresses.count > 64 || facts.addresses.contains(where: { $0.unicodeScalars.count > 64 }) {
            errors.append(.init(field: "facts.addresses", message: "at most 64 addresses of 64 characters"))
        }
        if let labels = facts.labels?.additionalProperties {
            do {
                _ = try Labels(labels)
            } catch {
                errors.append(.init(field: "facts.labels", message: error.description))
            }
        }
        if !errors.isEmpty { throw Problem.invalid(errors) }
    }
}
