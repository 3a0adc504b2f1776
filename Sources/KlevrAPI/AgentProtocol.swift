import Foundation
import KlevrCore

// The agent side of the API: enrollment and the sync exchange.
//
// The sync exchange is shaped for relaying: a request carries reports for a batch of agents and the
// answer carries runs and cancels for several agents, so a zone primary can later carry the whole
// zone's traffic in one long-poll. Today every agent reports for itself.

/// Facts an agent reports about its host.
public struct HostFacts: Codable, Sendable, Equatable {
    public var hostname: String
    public var os: String
    public var version: String
    public var addresses: [String]
    public init(hostname: String, os: String, version: String, addresses: [String]) {
        self.hostname = hostname
        self.os = os
        self.version = version
        self.addresses = addresses
    }
}

/// `POST /api/v1/agent/enroll`: the only agent call without a credential; it needs a zone key.
public struct EnrollRequest: Codable, Sendable {
    public var zone: String
    public var enrollKey: String
    /// The agent's Ed25519 public key, base64 (32 bytes).
    public var publicKey: String
    public var facts: HostFacts
    /// Where zone members reach this agent's peer API (`host:port`).
    public var peerAddress: String?
    /// The agent's X25519 public key, base64 (32 bytes): run parameters and answers are sealed to it.
    public var sealKey: String?
    /// Proof of possession: the agent's Ed25519 signature (base64) over ``EnrollRequest/statement()``.
    public var proof: String?
    /// The manager's time (epoch ms) as the agent estimated it when signing; the manager accepts a
    /// statement within 10 minutes of its clock, and never one older than the agent's last.
    public var proofTime: Int64?
    public init(
        zone: String, enrollKey: String, publicKey: String, facts: HostFacts, peerAddress: String? = nil, sealKey: String? = nil,
        proof: String? = nil, proofTime: Int64? = nil
    ) {
        self.zone = zone
        self.enrollKey = enrollKey
        self.publicKey = publicKey
        self.facts = facts
        self.peerAddress = peerAddress
        self.sealKey = sealKey
        self.proof = proof
        self.proofTime = proofTime
    }

    /// The bytes the proof signs: zone, both public keys, the enrollment key's hash and the time.
    public func statement() -> Data {
        Data("klevr-enroll-v1\n\(zone)\n\(publicKey)\n\(sealKey ?? "")\n\(Secrets.hash(enrollKey))\n\(proofTime ?? 0)".utf8)
    }
}

/// `GET /api/v1/agent/hello` (and `/peer/v1/hello` from any member): the manager's public keys and clock,
/// so that a new agent can check them against the pin of its enrollment key and seal its enrollment.
public struct ManagerHello: Codable, Sendable, Equatable {
    /// The manager's Ed25519 public key (base64); its SHA-256 is the pin in enrollment keys.
    public var managerPublicKey: String
    /// The manager's X25519 public key (base64) that enrollments are sealed to.
    public var managerSealKey: String
    /// The manager's signature over the seal key (domain ``SignedBlob/Domain/managerSealKey``).
    public var sealKeySignature: String
    /// The manager's clock (epoch ms), or a member's estimate of it.
    public var managerTime: Int64
    public init(managerPublicKey: String, managerSealKey: String, sealKeySignature: String, managerTime: Int64) {
        self.managerPublicKey = managerPublicKey
        self.managerSealKey = managerSealKey
        self.sealKeySignature = sealKeySignature
        self.managerTime = managerTime
    }

    /// The bytes the seal key signature covers.
    public static func sealKeyStatement(_ sealKey: String) -> Data {
        Data("\(SignedBlob.Domain.managerSealKey)\n\(sealKey)".utf8)
    }
}

/// An enrollment sealed to the manager's X25519 key (`POST /api/v1/agent/enroll-sealed`, and relayed by
/// members at `POST /peer/v1/enroll`): a relay learns neither the enrollment key nor the answer. The
/// answer is a ``SealedBox`` sealed to the agent's `sealKey`, holding a ``SignedBlob`` of the
/// ``EnrollResponse`` signed by the manager.
public struct SealedEnrollment: Codable, Sendable {
    public var box: SealedBox
    public init(box: SealedBox) { self.box = box }
    public static let requestContext = "enroll-request"
    public static let answerContext = "enroll-answer"
}

/// The agent's identity, returned once.
public struct EnrollResponse: Codable, Sendable {
    public var agentId: String
    public var credential: String
    public var zone: String
    public var heartbeatSeconds: Int
    /// The manager's Ed25519 public key (base64, 32 bytes): agents verify every run with it.
    public var managerPublicKey: String
    /// The manager's X25519 key (base64), with its signature by the manager's signing key.
    public var managerSealKey: String
    public var sealKeySignature: String
    /// The zone's id (peer requests name it).
    public var zoneId: String
    /// The manager's clock when it answered (epoch ms).
    public var managerTime: Int64
    public init(
        agentId: String, credential: String, zone: String, zoneId: String, heartbeatSeconds: Int, managerPublicKey: String, managerSealKey: String,
        sealKeySignature: String, managerTime: Int64
    ) {
        self.agentId = agentId
        self.credential = credential
        self.zone = zone
        self.zoneId = zoneId
        self.heartbeatSeconds = heartbeatSeconds
        self.managerPublicKey = managerPublicKey
        self.managerSealKey = managerSealKey
        self.sealKeySignature = sealKeySignature
        self.managerTime = managerTime
    }
}

/// An agent recorded the start of a run.
public struct RunStarted: Codable, Sendable, Equatable {
    public var runId: String
    public var at: Int64
    public init(runId: String, at: Int64) {
        self.runId = runId
        self.at = at
    }
}

/// A piece of a run's output; `seq` numbers the chunks of one run from 1 without gaps.
public struct LogChunk: Codable, Sendable, Equatable {
    public var runId: String
    public var seq: Int64
    public var stream: String
    public var data: String
    public var at: Int64
    public init(runId: String, seq: Int64, stream: String, data: String, at: Int64) {
        self.runId = runId
        self.seq = seq
        self.stream = stream
        self.data = data
        self.at = at
    }
}

/// A run's final outcome.
public struct RunResult: Codable, Sendable, Equatable {
    public var runId: String
    public var outcome: RunOutcome
    public var exitCode: Int?
    public var reason: String?
    /// What the last step wrote to `$KLEVR_RESULT_FILE` (at most 64 KiB).
    public var result: String?
    public var finishedAt: Int64
    public init(runId: String, outcome: RunOutcome, exitCode: Int?, reason: String?, result: String?, finishedAt: Int64) {
        self.runId = runId
        self.outcome = outcome
        self.exitCode = exitCode
        self.reason = reason
        self.result = result
        self.finishedAt = finishedAt
    }
}

/// What one agent reports in a sync.
public struct AgentReport: Codable, Sendable {
    public var agentId: String
    public var facts: HostFacts?
    public var started: [RunStarted]
    public var logs: [LogChunk]
    public var results: [RunResult]
    /// The agent's wall clock minus its estimate of the manager's clock (ms), shown on the agent.
    public var clockSkewMillis: Int64?
    public init(
        agentId: String, facts: HostFacts? = nil, started: [RunStarted] = [], logs: [LogChunk] = [], results: [RunResult] = [],
        clockSkewMillis: Int64? = nil
    ) {
        self.agentId = agentId
        self.facts = facts
        self.started = started
        self.logs = logs
        self.results = results
        self.clockSkewMillis = clockSkewMillis
    }

    /// Whether the report carries anything besides the heartbeat.
    public var isEmpty: Bool { started.isEmpty && logs.isEmpty && results.isEmpty }
}

/// `POST /api/v1/agent/sync`.
public struct SyncRequest: Codable, Sendable {
    /// Hold the answer (up to the manager's long-poll limit) until a run or cancel is ready.
    public var wait: Bool
    public var reports: [AgentReport]
    /// The lease epoch a zone primary holds; the manager checks and renews it with the reports, and
    /// answers 409 (`stale-epoch`) without applying anything when it is not current.
    public var epoch: Int64?
    /// A primary's relay of its members' reports, each signed by the member (domain
    /// ``SignedBlob/Domain/report``); the manager verifies each with the member's key.
    public var relayed: [SignedBlob]?
    /// A primary's members it hears from now: the manager counts them as seen and hands out work only
    /// for them (runs for the others stay queued).
    public var liveMembers: [String]?
    /// The digest of the signed membership the caller holds; the answer carries a new one only when it differs.
    public var membershipDigest: String?
    /// Peer API only: how long the primary may hold a member's poll (ms, at most 30 s).
    public var holdMillis: Int?
    public init(
        wait: Bool, reports: [AgentReport], epoch: Int64? = nil, relayed: [SignedBlob]? = nil, liveMembers: [String]? = nil,
        membershipDigest: String? = nil, holdMillis: Int? = nil
    ) {
        self.holdMillis = holdMillis
        self.wait = wait
        self.reports = reports
        self.epoch = epoch
        self.relayed = relayed
        self.liveMembers = liveMembers
        self.membershipDigest = membershipDigest
    }
}

/// `POST /api/v1/agent/lease`: ask for (or renew) the zone's primary lease.
public struct LeaseRequest: Codable, Sendable {
    /// The highest epoch the agent knows of (informational).
    public var knownEpoch: Int64
    /// Where members reach the caller's peer API; recorded for the membership list.
    public var peerAddress: String?
    /// The caller's election priority (recorded for the membership list).
    public var priority: Int?
    public init(knownEpoch: Int64, peerAddress: String? = nil, priority: Int? = nil) {
        self.knownEpoch = knownEpoch
        self.peerAddress = peerAddress
        self.priority = priority
    }
}

/// A zone member as the membership list gives it.
public struct Member: Codable, Sendable, Equatable {
    public var agentId: String
    /// The member's Ed25519 public key (base64): its peer requests and answers are checked with it.
    public var publicKey: String
    /// `host:port` of its peer API; empty when unknown.
    public var peerAddress: String
    public var canReachManager: Bool
    /// Election priority: among candidates, higher goes first, then the lower id.
    public var priority: Int
    public init(agentId: String, publicKey: String = "", peerAddress: String, canReachManager: Bool, priority: Int = 0) {
        self.agentId = agentId
        self.publicKey = publicKey
        self.peerAddress = peerAddress
        self.canReachManager = canReachManager
        self.priority = priority
    }
}

/// The zone's membership, signed by the manager (domain ``SignedBlob/Domain/membership``) and passed
/// by the primary to every member: the lease holder and its epoch, and every active member's keys and
/// address. Members trust a peer only if the latest membership they hold lists it.
public struct Membership: Codable, Sendable, Equatable {
    public var zoneId: String
    public var primary: String
    public var epoch: Int64
    public var members: [Member]
    /// When the manager signed this list (its clock, epoch ms): of two lists of one epoch, members keep
    /// the later, so that an old list (say, one that still names a retired agent) cannot come back.
    public var issuedAt: Int64
    public init(zoneId: String = "", primary: String, epoch: Int64, members: [Member], issuedAt: Int64 = 0) {
        self.zoneId = zoneId
        self.primary = primary
        self.epoch = epoch
        self.members = members
        self.issuedAt = issuedAt
    }

    /// Whether this list supersedes `other` (a later epoch, or the same epoch signed later).
    public func isNewer(than other: Membership) -> Bool {
        (epoch, issuedAt) > (other.epoch, other.issuedAt)
    }

    public func member(_ agentID: String) -> Member? { members.first { $0.agentId == agentID } }
}

/// The zone's lease as the manager decided it.
public struct LeaseResponse: Codable, Sendable, Equatable {
    /// Whether the caller holds the lease now.
    public var granted: Bool
    public var holder: String
    public var epoch: Int64
    public var expiresAt: Int64
    /// The holder's peer address, so that the caller can follow it.
    public var holderAddress: String
    /// How long the lease lasts from now (ms), so that agents need not trust clocks to agree.
    public var durationMillis: Int64
    /// The manager's clock when it answered (epoch ms).
    public var managerTime: Int64?
    public init(
        granted: Bool, holder: String, epoch: Int64, expiresAt: Int64, holderAddress: String = "", durationMillis: Int64 = 0,
        managerTime: Int64? = nil
    ) {
        self.managerTime = managerTime
        self.granted = granted
        self.holder = holder
        self.epoch = epoch
        self.expiresAt = expiresAt
        self.holderAddress = holderAddress
        self.durationMillis = durationMillis
    }
}

/// `GET /peer/v1/whois` on an agent's peer API: who it is and whom it follows.
public struct PeerWhois: Codable, Sendable, Equatable {
    public var agentId: String
    /// `primary`, `candidate` or `secondary`.
    public var role: String
    public var primary: String?
    public var primaryAddress: String?
    public var epoch: Int64
    /// The manager-signed membership the answering agent holds (its primary and epoch are what count).
    public var signedMembership: SignedBlob?
    /// The answering agent's estimate of the manager's clock.
    public var managerTime: Int64?
    public init(
        agentId: String, role: String, primary: String?, primaryAddress: String?, epoch: Int64, signedMembership: SignedBlob? = nil,
        managerTime: Int64? = nil
    ) {
        self.agentId = agentId
        self.role = role
        self.primary = primary
        self.primaryAddress = primaryAddress
        self.epoch = epoch
        self.signedMembership = signedMembership
        self.managerTime = managerTime
    }
}

/// A run handed to an agent: everything it needs to execute it.
public struct RunEnvelope: Codable, Sendable, Equatable {
    public var runId: String
    public var taskId: String
    public var agentId: String
    public var zone: String
    public var steps: [StepSpec]
    /// The parameters in clear: filled in only on the agent, once it opened ``sealedParams``. The
    /// manager never sends parameters in clear to an agent that has a seal key.
    public var params: [String: String]
    /// The parameters (JSON object) sealed to the target agent's X25519 key (context `run-params:<run id>`).
    public var sealedParams: SealedBox?
    public var timeoutSeconds: Int
    public var issuedAt: Int64
    /// After this time (epoch ms) an agent refuses to start the run; a re-sent run is signed anew.
    public var expiresAt: Int64
    /// The manager's Ed25519 signature (base64) over ``signedPayload()``.
    public var signature: String
    public init(
        runId: String, taskId: String, agentId: String, zone: String, steps: [StepSpec], params: [String: String],
        timeoutSeconds: Int, issuedAt: Int64, expiresAt: Int64, signature: String = "", sealedParams: SealedBox? = nil
    ) {
        self.sealedParams = sealedParams
        self.runId = runId
        self.taskId = taskId
        self.agentId = agentId
        self.zone = zone
        self.steps = steps
        self.params = params
        self.timeoutSeconds = timeoutSeconds
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.signature = signature
    }
}

/// An order to stop a run, signed by the manager like run envelopes.
public struct CancelOrder: Codable, Sendable, Equatable {
    public var agentId: String
    public var runId: String
    /// The manager's Ed25519 signature (base64) over ``signedPayload``.
    public var signature: String
    public init(agentId: String, runId: String, signature: String = "") {
        self.agentId = agentId
        self.runId = runId
        self.signature = signature
    }

    public var signedPayload: Data { Data("klevr-cancel-v1\n\(agentId)\n\(runId)".utf8) }
}

/// What the manager has durably stored from a report; the agent may drop these from its outbox.
public struct SyncAcks: Codable, Sendable, Equatable {
    public var started: [String]
    /// Per run, the highest log `seq` stored (all lower ones are stored too).
    public var logs: [String: Int64]
    public var results: [String]
    /// Reports the manager refused for good (unknown run, illegal transition) with the reason; the
    /// agent drops them too, they can never be accepted.
    public var rejected: [String: String]
    public init(started: [String] = [], logs: [String: Int64] = [:], results: [String] = [], rejected: [String: String] = [:]) {
        self.started = started
        self.logs = logs
        self.results = results
        self.rejected = rejected
    }
}

/// The acknowledgements of one relayed member, as the manager signs them for it.
public struct MemberAcks: Codable, Sendable, Equatable {
    public var agentId: String
    public var acks: SyncAcks
    public init(agentId: String, acks: SyncAcks) {
        self.agentId = agentId
        self.acks = acks
    }
}

/// The answer to a sync.
public struct SyncResponse: Codable, Sendable {
    public var acks: SyncAcks
    public var runs: [RunEnvelope]
    public var cancels: [CancelOrder]
    public var heartbeatSeconds: Int
    /// To a primary, and from a primary to its members: the zone's manager-signed ``Membership``, when
    /// it differs from the caller's `membershipDigest`.
    public var signedMembership: SignedBlob?
    /// The manager's clock when it answered (epoch ms); from a primary, its estimate of it.
    public var managerTime: Int64?
    /// To a primary: the acknowledgements of each relayed member's report, signed by the manager (domain
    /// ``SignedBlob/Domain/acks``), which the primary passes on unchanged.
    public var memberAcks: [String: SignedBlob]?
    /// From a primary to a member: the manager-signed acknowledgements of its reports.
    public var signedAcks: SignedBlob?
    public init(
        acks: SyncAcks, runs: [RunEnvelope], cancels: [CancelOrder], heartbeatSeconds: Int, signedMembership: SignedBlob? = nil,
        managerTime: Int64? = nil, memberAcks: [String: SignedBlob]? = nil, signedAcks: SignedBlob? = nil
    ) {
        self.acks = acks
        self.runs = runs
        self.cancels = cancels
        self.heartbeatSeconds = heartbeatSeconds
        self.signedMembership = signedMembership
        self.managerTime = managerTime
        self.memberAcks = memberAcks
        self.signedAcks = signedAcks
    }
}

/// An RFC 9457 problem document, as every error of the API is returned.
public struct ProblemDocument: Codable, Sendable, Error {
    /// One invalid field.
    public struct FieldError: Codable, Sendable, Equatable {
        public var field: String
        public var message: String
        public init(field: String, message: String) {
            self.field = field
            self.message = message
        }
    }
    public var type: String
    public var title: String
    public var status: Int
    public var detail: String
    public var errors: [FieldError]?
    public init(type: String, title: String, status: Int, detail: String, errors: [FieldError]? = nil) {
        self.type = type
        self.title = title
        self.status = status
        self.detail = detail
        self.errors = errors
    }
}
