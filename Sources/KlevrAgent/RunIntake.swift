import Crypto
import Foundation
import KlevrAPI
import KlevrCore
import Logging

/// Decides whether a received run may start: it must carry a valid manager signature, be addressed to
/// this agent, not be expired, and not be in the ledger already. An expired run is recorded in the
/// ledger and reported as failed with the reason, so the refusal is visible on the run; an envelope the
/// manager did not sign (or for another agent) is dropped and logged, and changes nothing.
public struct RunIntake: Sendable {
    let agentID: String
    let managerKey: Curve25519.Signing.PublicKey
    let outbox: Outbox
    let sealKey: Curve25519.KeyAgreement.PrivateKey?
    let clock: ManagerClock

    public struct InvalidKey: Error, CustomStringConvertible {
        public var description: String { "the stored manager public key is not an Ed25519 key; re-enroll the agent" }
    }

    public init(identity: AgentIdentity, outbox: Outbox, clock: ManagerClock = ManagerClock()) throws {
        self.clock = clock
        self.sealKey = identity.sealPrivateKey.flatMap { Data(base64Encoded: $0) }.flatMap {
            try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: $0)
        }
        guard let raw = Data(base64Encoded: identity.managerPublicKey),
            let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw)
        else { throw InvalidKey() }
        self.agentID = identity.agentId
        self.managerKey = key
        self.outbox = outbox
    }

    /// The run to execute now, its parameters opened, or nil. Records the run in the ledger either way
    /// (a run is decided once). Expiry is judged in the manager's time, as this agent estimates it.
    public func admit(_ envelope: RunEnvelope, logger: Logger, now: Int64? = nil) async throws -> RunEnvelope? {
        let now = now ?? clock.now()
        var opened = envelope
        do {
            try envelope.verify(managerKey: managerKey, agentID: agentID, now: now)
            if envelope.sealedParams != nil {
                guard let sealKey, let unsealed = try? envelope.openingParams(with: sealKey) else { throw RunEnvelope.Refusal.badSignature }
                opened = unsealed
            }
        } catch {
            logger.warning("refused a run", metadata: ["run.id": "\(envelope.runId)", "reason": "\(error)"])
            // A run for another agent is not ours to report; anything else is reported as refused.
            // A run for another agent is not ours to report, and one the manager did not sign is not a run at
            // all: recording it would let whoever forged it (a relay) make the genuine run with that id fail.
            var outcome = RunOutcome.failed
            if let refusal = error as? RunEnvelope.Refusal {
                switch refusal {
                case .wrongAgent, .badSignature: return nil
                case .expired: break
                // Past its deadline the run must not run at all: it ends expired, not failed.
                case .pastDeadline: outcome = .expired
                }
            }
            if try await outbox.begin(envelope.runId, at: now) {
                try await outbox.finish(
                    RunResult(runId: envelope.runId, outcome: outcome, exitCode: nil, reason: "refused by the agent: \(error)", result: nil, finishedAt: now))
            }
            return nil
        }
        // The start is reported when the run gets a slot and really starts (AgentService).
        return try await outbox.begin(envelope.runId, at: now, reportStart: false) ? opened : nil
    }
}
