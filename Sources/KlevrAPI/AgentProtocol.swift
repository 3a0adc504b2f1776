import Foundation
import KlevrCore

// The agent side of the API: enrollment and the sync exchange.
//
// Every type on the wire is generated from `openapi.yaml` (`Components.Schemas`); this file gives them
// the names the code uses and adds what the document cannot say: the bytes that are signed, and small
// conveniences. The sync exchange is shaped for relaying: a request carries reports for a batch of
// agents and the answer carries runs and cancels for several agents, so that a zone primary carries the
// whole zone's traffic in one long-poll.

/// Facts an agent reports about its host.
public typealias HostFacts = Components.Schemas.HostFacts
/// `POST /api/v1/agent/enroll`: the only agent call without a credential; it needs a zone key.
public typealias EnrollRequest = Components.Schemas.EnrollRequest
/// `GET /api/v1/agent/hello` (and `/peer/v1/hello` from any member): the manager's public keys and clock.
public typealias ManagerHello = Components.Schemas.ManagerHello
/// An enrollment sealed to the manager's X25519 key (`POST /api/v1/agent/enroll-sealed`).
public typealias SealedEnrollment = Components.Schemas.SealedEnrollment
/// The agent's identity, returned once.
public typealias EnrollResponse = Components.Schemas.EnrollResponse
/// An agent recorded the start of a run.
public typealias RunStarted = Components.Schemas.RunStarted
/// A piece of a run's output; `seq` numbers the chunks of one run from 1 without gaps.
public typealias LogChunk = Components.Schemas.AgentLogChunk
/// A run's final outcome.
public typealias RunResult = Components.Schemas.RunResult
/// What one agent reports in a sync.
public typealias AgentReport = Components.Schemas.AgentReport
/// `POST /api/v1/agent/sync`.
public typealias SyncRequest = Components.Schemas.SyncRequest
/// `POST /api/v1/agent/lease`: ask for (or renew) the zone's primary lease.
public typealias LeaseRequest = Components.Schemas.LeaseRequest
/// The zone's lease as the manager decided it.
public typealias LeaseResponse = Components.Schemas.LeaseResponse
/// A zone member as the membership list gives it.
public typealias Member = Components.Schemas.Member
/// The zone's membership, signed by the manager (domain ``SignedBlob/Domain/membership``).
public typealias Membership = Components.Schemas.Membership
/// One step of a run: a script (and later a built-in command).
public typealias StepSpec = Components.Schemas.Step
/// A run handed to an agent: everything it needs to execute it, signed by the manager.
public typealias RunEnvelope = Components.Schemas.RunEnvelope
/// An order to stop a run, signed by the manager like run envelopes.
public typealias CancelOrder = Components.Schemas.CancelOrder
/// What the manager has durably stored from a report; the agent may drop these from its outbox.
public typealias SyncAcks = Components.Schemas.SyncAcks
/// The acknowledgements of one relayed member, as the manager signs them for it.
public typealias MemberAcks = Components.Schemas.MemberAcks
/// The answer to a sync.
public typealias SyncResponse = Components.Schemas.SyncResponse
/// An RFC 9457 problem document, as every error of the API is returned.
public typealias ProblemDocument = Components.Schemas.Problem

extension EnrollRequest {
    /// The bytes the proof signs: zone, both public keys, the enrollment key's hash and the time.
    public func statement() -> Data {
        Data("klevr-enroll-v1\n\(zone)\n\(publicKey)\n\(sealKey)\n\(Secrets.hash(enrollKey))\n\(proofTime)".utf8)
    }
}

extension ManagerHello {
    /// The bytes the seal key signature covers.
    public static func sealKeyStatement(_ sealKey: String) -> Data {
        Data("\(SignedBlob.Domain.managerSealKey)\n\(sealKey)".utf8)
    }
}

extension SealedEnrollment {
    public static let requestContext = "enroll-request"
    public static let answerContext = "enroll-answer"
}

extension AgentReport {
    /// A report with nothing in it yet.
    public init(agentId: String, facts: HostFacts? = nil, clockSkewMillis: Int64? = nil) {
        self.init(agentId: agentId, facts: facts, started: [], logs: [], results: [], clockSkewMillis: clockSkewMillis)
    }

    /// Whether the report carries anything besides the heartbeat.
    public var isEmpty: Bool { started.isEmpty && logs.isEmpty && results.isEmpty }
}

extension Membership {
    /// Whether this list supersedes `other` (a later epoch, or the same epoch signed later).
    public func isNewer(than other: Membership) -> Bool {
        (epoch, issuedAt) > (other.epoch, other.issuedAt)
    }

    public func member(_ agentID: String) -> Member? { members.first { $0.agentId == agentID } }
}

extension CancelOrder {
    public var signedPayload: Data { Data("klevr-cancel-v1\n\(agentId)\n\(runId)".utf8) }
}

extension SyncAcks {
    /// Nothing acknowledged.
    public init() { self.init(started: [], logs: [:], results: [], rejected: [:]) }
}

extension ProblemDocument {
    /// One invalid field.
    public typealias FieldError = ErrorsPayloadPayload

    public init(type: String, title: String, status: Int, detail: String, errors: [FieldError]? = nil) {
        self.init(_type: type, title: title, status: status, detail: detail, errors: errors)
    }

    /// The problem type (`invalid`, `stale-epoch` …).
    public var type: String { _type }
}

// The JSON objects the document declares with `additionalProperties` are generated as wrappers around a
// dictionary; these let the code read and write them as the dictionaries they are.
extension RunEnvelope.ParamsPayload: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, String)...) { self.init(additionalProperties: Dictionary(uniqueKeysWithValues: elements)) }
    public subscript(key: String) -> String? {
        get { additionalProperties[key] }
        set { additionalProperties[key] = newValue }
    }
}

extension SyncAcks.LogsPayload: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, Int64)...) { self.init(additionalProperties: Dictionary(uniqueKeysWithValues: elements)) }
    public subscript(key: String) -> Int64? {
        get { additionalProperties[key] }
        set { additionalProperties[key] = newValue }
    }
}

extension SyncAcks.RejectedPayload: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, String)...) { self.init(additionalProperties: Dictionary(uniqueKeysWithValues: elements)) }
    public subscript(key: String) -> String? {
        get { additionalProperties[key] }
        set { additionalProperties[key] = newValue }
    }
}

extension SyncResponse.MemberAcksPayload: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, SignedBlob)...) { self.init(additionalProperties: Dictionary(uniqueKeysWithValues: elements)) }
    public subscript(key: String) -> SignedBlob? {
        get { additionalProperties[key] }
        set { additionalProperties[key] = newValue }
    }
}
