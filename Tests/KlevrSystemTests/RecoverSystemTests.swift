import Foundation
import KlevrAPI
import KlevrClient
import KlevrCore
import KlevrTestSupport
import Testing

/// Recover steps with a real manager and agent: a failed step runs them, the run shows `recovering`, and
/// it ends `failed` (recovered) or `failed_recover`.
@Suite(.serialized, .timeLimit(.minutes(5)), .waitsForProcesses)
struct RecoverSystemTests {
    @Test func aFailedStepRunsTheRecoverStepsAndTheRunSaysHowRecoveryWent() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "z")
        let agent = try await cluster.startAgent("a", zone: "z")
        let gate = cluster.directory + "/recovery-may-end"

        // Step 2 fails; the recover step waits for the test's signal, so the run is seen `recovering`.
        let recovered = try await cluster.createTask(
            .init(
                zone: "z", target: .agent(agent),
                steps: [.init(script: "echo one"), .init(name: "break", script: "echo two; exit 3"), .init(script: "echo never")],
                recover: [
                    .init(
                        name: "clean up",
                        script: "echo \"recovering after step $KLEVR_FAILED_STEP: $KLEVR_FAILED_REASON\"; while [ ! -e '\(gate)' ]; do sleep 0.2; done")
                ]))
        let runID = try #require(recovered.runs.first?.id)
        try await eventually(60, "the run is recovering") { (try? await cluster.run(runID).status) == .recovering }
        FileManager.default.createFile(atPath: gate, contents: Data())
        try await eventually(60, "the run ended") { (try? await cluster.run(runID).status.isTerminal) == true }
        let run = try await cluster.run(runID)
        #expect(run.status == .failed)
        #expect(run.reason?.contains("step 2 (break) exited with status 3") == true, "\(run.reason ?? "")")
        #expect(run.reason?.contains("recovered") == true, "\(run.reason ?? "")")
        #expect(run.exitCode == 3)
        let output = try await cluster.output(runID)
        #expect(output.contains("recovering after step 2: step 2 (break) exited with status 3"), "\(output)")
        #expect(!output.contains("never"))
        #expect(try await cluster.events(kind: "run.recovering", subject: runID).count == 1)
        #expect(try await cluster.getTaskRecover(recovered.id) == ["clean up"])

        // A recover step that fails too: failed_recover, saying both.
        let unrecovered = try await cluster.createTask(
            .init(zone: "z", target: .agent(agent), steps: [.init(script: "exit 1")], recover: [.init(script: "echo trying; exit 7")]))
        let secondID = try #require(unrecovered.runs.first?.id)
        try await eventually(60, "the second run ended") { (try? await cluster.run(secondID).status.isTerminal) == true }
        let second = try await cluster.run(secondID)
        #expect(second.status == .failedRecover)
        #expect(second.reason?.contains("step 1 exited with status 1") == true, "\(second.reason ?? "")")
        #expect(second.reason?.contains("recovery failed: step 1 exited with status 7") == true, "\(second.reason ?? "")")

        // A run that succeeds never runs its recover steps.
        let fine = try await cluster.createTask(
            .init(zone: "z", target: .agent(agent), steps: [.init(script: "echo fine")], recover: [.init(script: "echo should-not-run")]))
        let fineID = try #require(fine.runs.first?.id)
        try await eventually(60, "the third run ended") { (try? await cluster.run(fineID).status.isTerminal) == true }
        #expect(try await cluster.run(fineID).status == .succeeded)
        #expect(!(try await cluster.output(fineID)).contains("should-not-run"))
        #expect(try await cluster.events(kind: "run.recovering", subject: fineID).isEmpty)
    }
}

extension Cluster {
    /// The names of a task's recover steps, as the API shows them.
    func getTaskRecover(_ id: String) async throws -> [String?] {
        try await api.getTask(path: .init(id: id)).ok.body.json.recover?.map(\.name) ?? []
    }
}
