import Crypto
import Foundation

/// Signing and verifying run envelopes.
///
/// The manager signs each envelope with its Ed25519 key when it hands the run out; the agent verifies
/// the signature, that the run is addressed to it, and that it has not expired, before it starts
/// anything. A relay (or anyone else on the path) therefore cannot alter or inject commands.
///
/// The signed bytes are the envelope without its signature, as JSON with sorted keys and unescaped
/// slashes, prefixed by the domain tag `klevr-run-v1\n`.
extension RunEnvelope {
    /// Why an agent refuses an envelope.
    public enum Refusal: Error, Equatable, CustomStringConvertible {
        case badSignature
        case wrongAgent(String)
        case expired(Int64)
        /// Its delivery deadline passed before it could start: it must not run.
        case pastDeadline(Int64)

        public var description: String {
            switch self {
            case .badSignature: "the run's signature does not verify with the manager's key"
            case .wrongAgent(let agent): "the run is addressed to agent \(agent), not this one"
            case .expired(let at): "the run expired at \(at) (epoch ms) before it reached this agent"
            case .pastDeadline(let at): "the run's delivery deadline passed at \(at) (epoch ms) before it could start"
            }
        }
    }

    private struct SignedPart: Encodable {
        var runId: String
        var taskId: String
        var agentId: String
        var zone: String
        var steps: [LegacyStep]
        /// Encoded only when set (tasks with recover steps).
        var recover: [LegacyStep]?
        var params: [String: String]
        var sealedParams: SealedBox?
        var timeoutSeconds: Int
        var issuedAt: Int64
        var expiresAt: Int64
        /// Encoded only when set, so that the signed bytes of envelopes without a deadline are unchanged.
        var deliverBy: Int64?
        /// Encoded only when set (runs that name credentials).
        var credentials: [String]?
        var sealedCredentials: SealedBox?
    }

    /// A step as every agent version knows it: what `signature` covers of it (agents that predate
    /// built-in commands re-encode the steps they decoded, which have only these fields).
    private struct LegacyStep: Encodable {
        var name: String?
        var script: String?
        var timeoutSeconds: Int?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encodeIfPresent(name, forKey: .name)
            try container.encodeIfPresent(script, forKey: .script)
            try container.encodeIfPresent(timeoutSeconds, forKey: .timeoutSeconds)
        }

        enum CodingKeys: String, CodingKey { case name, script, timeoutSeconds }

        init(_ step: StepSpec) {
            name = step.name
            script = step.script
            timeoutSeconds = step.timeoutSeconds
        }
    }

    /// What `stepsSignature` covers besides the run id: the full steps and recover steps.
    private struct FullSteps: Encodable {
        var steps: [StepSpec]
        /// Encoded only when set.
        var recover: [StepSpec]?
    }

    /// Whether a step carries more than every agent version knows (a command, arguments): then the
    /// envelope needs `stepsSignature`.
    public var hasExtendedSteps: Bool { (steps + (recover ?? [])).contains { $0.command != nil || $0.args != nil } }

    /// The bytes the signature covers.
    public func signedPayload() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let part = SignedPart(
            runId: runId, taskId: taskId, agentId: agentId, zone: zone, steps: steps.map(LegacyStep.init), recover: recover?.map(LegacyStep.init),
            params: params.additionalProperties, sealedParams: sealedParams, timeoutSeconds: timeoutSeconds, issuedAt: issuedAt, expiresAt: expiresAt,
            deliverBy: deliverBy, credentials: credentials, sealedCredentials: sealedCredentials)
        return Data("klevr-run-v1\n".utf8) + (try encoder.encode(part))
    }

    /// The bytes `stepsSignature` covers: the full steps and recover steps, bound to the run.
    public func signedStepsPayload() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Data("klevr-run-steps-v1\n\(runId)\n".utf8) + (try encoder.encode(FullSteps(steps: steps, recover: recover)))
    }

    /// This envelope, signed with the manager's key (and its steps too when they need it).
    public func signed(with key: Curve25519.Signing.PrivateKey) throws -> RunEnvelope {
        var copy = self
        copy.signature = try key.signature(for: signedPayload()).base64EncodedString()
        copy.stepsSignature = hasExtendedSteps ? try key.signature(for: signedStepsPayload()).base64EncodedString() : nil
        return copy
    }

    /// Checks the signature, the target agent and the expiry.
    /// - Throws: ``Refusal`` saying what is wrong.
    public func verify(managerKey: Curve25519.Signing.PublicKey, agentID: String, now: Int64) throws(Refusal) {
        guard let signatureData = Data(base64Encoded: signature),
            let payload = try? signedPayload(),
            managerKey.isValidSignature(signatureData, for: payload)
        else { throw .badSignature }
        if hasExtendedSteps {
            guard let stepsSignature, let stepsData = Data(base64Encoded: stepsSignature), let stepsPayload = try? signedStepsPayload(),
                managerKey.isValidSignature(stepsData, for: stepsPayload)
            else { throw .badSignature }
        }
        guard agentId == agentID else { throw .wrongAgent(agentId) }
        if let deliverBy, now > deliverBy { throw .pastDeadline(deliverBy) }
        guard now <= expiresAt else { throw .expired(expiresAt) }
    }
}

extension RunEnvelope {
    /// The context run parameters are sealed for: bound to the run, so a box cannot be moved to another.
    public var paramsContext: String { "run-params:\(runId)" }

    /// This envelope with its parameters sealed to the agent's X25519 key (nothing in clear remains).
    public func sealingParams(to key: Curve25519.KeyAgreement.PublicKey) throws -> RunEnvelope {
        var copy = self
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        copy.sealedParams = try Sealing.seal(try encoder.encode(params.additionalProperties), to: key, context: paramsContext)
        copy.params = [:]
        return copy
    }

    /// This envelope with its sealed parameters opened (call after ``verify(managerKey:agentID:now:)``).
    public func openingParams(with key: Curve25519.KeyAgreement.PrivateKey) throws -> RunEnvelope {
        guard let sealedParams else { return self }
        var copy = self
        copy.params = .init(
            additionalProperties: try JSONDecoder().decode([String: String].self, from: try Sealing.open(sealedParams, with: key, context: paramsContext)))
        copy.sealedParams = nil
        return copy
    }
}

extension RunEnvelope {
    /// The context credentials are sealed for: bound to the run, so a box cannot be moved to another.
    public var credentialsContext: String { "run-credentials:\(runId)" }

    /// Why the credentials of a run cannot be used.
    public struct CredentialProblem: Error, CustomStringConvertible {
        public var description: String
    }

    /// This envelope with `values` (by name) sealed to the agent's X25519 key, and their names listed.
    public func sealingCredentials(_ values: [String: String], names: [String], to key: Curve25519.KeyAgreement.PublicKey?) throws -> RunEnvelope {
        var copy = self
        copy.credentials = names
        // Without a seal key the values are not sent at all: the agent fails the run, naming them.
        if let key {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            copy.sealedCredentials = try Sealing.seal(try encoder.encode(values), to: key, context: credentialsContext)
        }
        return copy
    }

    /// The run's credentials by name, opened with the agent's seal key (empty for a run that names none).
    /// - Throws: ``CredentialProblem`` when they do not open or one that the run names is missing.
    public func openedCredentials(with key: Curve25519.KeyAgreement.PrivateKey?) throws(CredentialProblem) -> [String: String] {
        let names = credentials ?? []
        guard !names.isEmpty || sealedCredentials != nil else { return [:] }
        var values: [String: String] = [:]
        if let sealedCredentials {
            guard let key else { throw CredentialProblem(description: "the run's credentials are sealed, and this agent has no seal key") }
            do {
                values = try JSONDecoder().decode([String: String].self, from: try Sealing.open(sealedCredentials, with: key, context: credentialsContext))
            } catch {
                throw CredentialProblem(description: "the run's credentials do not open with this agent's seal key")
            }
        }
        let missing = names.filter { values[$0] == nil }
        if !missing.isEmpty {
            throw CredentialProblem(description: "credentials \(missing.joined(separator: ", ")) did not reach this agent (deleted, or the agent cannot receive sealed values)")
        }
        return values
    }
}

extension CancelOrder {
    /// This order, signed with the manager's key.
    public func signed(with key: Curve25519.Signing.PrivateKey) throws -> CancelOrder {
        var copy = self
        copy.signature = try key.signature(for: signedPayload).base64EncodedString()
        return copy
    }

    /// Whether the manager signed this order.
    public func verifies(with key: Curve25519.Signing.PublicKey) -> Bool {
        guard let data = Data(base64Encoded: signature) else { return false }
        return key.isValidSignature(data, for: signedPayload)
    }
}
