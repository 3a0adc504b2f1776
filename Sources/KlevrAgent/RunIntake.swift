import Crypto
import Foundation
import KlevrAPI
import KlevrCore
import Logging

/// Decides whether a received run may start: it must carry a valid manager signature, be addressed to
/// this agent, not be expired, and not be in the ledger already. A refused run is recorded in the
/// ledger and reported as failed with the reason, so the refusal is visible on the run.
public struct RunIntake: Sendable {
    let agentID: String
    let managerKey: Curve25519.Signing.PublicKey
    let outbox: Outbox

    public struct InvalidKey: Error, CustomStringConvertible {
        public var description: String { "the stored manager public key is not an Ed25519 key; re-enroll the agent" }
    }

    public init(identity: AgentIdentity, outbox: Outbox) throws {
        guard let raw = Data(base64Encoded: identity.managerPublicKey),
            let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw)
        else { throw InvalidKey() }
        self.agentID = identity.agentId
        self.managerKey = key
        self.outbox = outbox
    }

    /// Whether to execute the run now. Records the run in the ledger either way (a run is decided once).
    public func admit(_ envelope: RunEnvelope, logger: Logger, now: Int64 = Clock.nowMillis()) async throws -> Bool {
        do {
            try envelope.verify(managerKey: managerKey, agentID: agentID, now: now)
        } catch {
            logger.warning("refused a run", metadata: ["run.id": "\(envelope.runId)", "reason": "\(error)"])
            // A run for another agent is not ours to report; anything else is reported as refused.
            if case .wrongAgent = error { return false }
            if try await outbox.begin(envelope.runId, at: now) {
                try await outbox.finish(
                    RunResult(runId: envelope.runId, outcome: .failed, exitCode: nil, reason: "refused by the agent: \(error)", result: nil, finishedAt: now))
            }
            return false
        }
        return try await outbox.begin(envelope.runId, at: now)
    }
}
