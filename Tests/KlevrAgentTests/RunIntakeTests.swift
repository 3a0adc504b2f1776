import Crypto
import Foundation
import KlevrAPI
import KlevrAgent
import KlevrCore
import Logging
import Testing

/// An agent starts only runs signed by its manager, addressed to it and not expired; a refusal is
/// reported as a failed run with the reason.
@Suite struct RunIntakeTests {
    let managerKey = Curve25519.Signing.PrivateKey()
    let agentID = Secrets.newID()
    let logger = Logger(label: "test")

    func intake() throws -> (RunIntake, Outbox) {
        let outbox = try Outbox(directory: FileManager.default.temporaryDirectory.appendingPathComponent("klevr-intake-\(UUID().uuidString)").path)
        let identity = AgentIdentity(
            agentId: agentID, credential: "kla_x", zone: "z", managerURL: "http://127.0.0.1:1", privateKey: "", heartbeatSeconds: 5,
            managerPublicKey: managerKey.publicKey.rawRepresentation.base64EncodedString())
        return (try RunIntake(identity: identity, outbox: outbox), outbox)
    }

    func envelope(for agent: String? = nil, script: String = "echo hi", expiresIn: Int64 = 60_000) throws -> RunEnvelope {
        let now = Clock.nowMillis()
        return try RunEnvelope(
            runId: Secrets.newID(), taskId: Secrets.newID(), agentId: agent ?? agentID, zone: "z", steps: [StepSpec(script: script)], params: [:],
            timeoutSeconds: 60, issuedAt: now, expiresAt: now + expiresIn, signature: ""
        ).signed(with: managerKey)
    }

    @Test func aSignedRunForThisAgentIsAdmittedOnce() async throws {
        let (intake, outbox) = try intake()
        let run = try envelope()
        #expect(try await intake.admit(run, logger: logger) != nil)
        #expect(try await intake.admit(run, logger: logger) == nil)
        #expect(await outbox.report(agentID: agentID).results.isEmpty)
    }

    @Test func anAlteredRunIsDroppedAndTheGenuineOneStillRuns() async throws {
        let (intake, outbox) = try intake()
        let genuine = try envelope()
        var run = genuine
        run.steps[0].script = "rm -rf /"
        #expect(try await intake.admit(run, logger: logger) == nil)
        // Nothing recorded: a forger (say, a relay) cannot make the genuine run with that id fail.
        #expect(await outbox.report(agentID: agentID).results.isEmpty)
        #expect(try await intake.admit(genuine, logger: logger) != nil)
        #expect(try await intake.admit(genuine, logger: logger) == nil)
    }

    @Test func aRunSignedByAnotherKeyIsDropped() async throws {
        let (intake, outbox) = try intake()
        let now = Clock.nowMillis()
        let forged = try RunEnvelope(
            runId: Secrets.newID(), taskId: Secrets.newID(), agentId: agentID, zone: "z", steps: [StepSpec(script: "id")], params: [:],
            timeoutSeconds: 60, issuedAt: now, expiresAt: now + 60_000, signature: ""
        ).signed(with: Curve25519.Signing.PrivateKey())
        #expect(try await intake.admit(forged, logger: logger) == nil)
        #expect(await outbox.report(agentID: agentID).results.isEmpty)
        #expect(await outbox.isEmpty)
    }

    @Test func expiredAndMisaddressedRunsAreRefused() async throws {
        let (intake, outbox) = try intake()
        let expired = try envelope(expiresIn: -1)
        #expect(try await intake.admit(expired, logger: logger) == nil)
        #expect(await outbox.report(agentID: agentID).results.first?.reason?.contains("expired") == true)
        let other = try envelope(for: Secrets.newID())
        #expect(try await intake.admit(other, logger: logger) == nil)
        #expect(await outbox.report(agentID: agentID).results.count == 1, "a run for another agent is not reported by this one")
    }
}
