import Foundation
import KlevrAPI
import KlevrAgent
import KlevrCore
import Logging
import KlevrTestSupport
import Testing

/// The executor on real `/bin/sh` processes.
@Suite(.timeLimit(.minutes(2)))
struct ExecutorTests {
    struct Fixture {
        /// Stands in for the agent's state directory.
        let directory: String
        let workDir: String
        let outbox: Outbox
        let executor: Executor

        init(runAs: String? = nil, maskedSecrets: [String] = []) throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("klevr-exec-\(UUID().uuidString)").path
            workDir = directory + "-work"
            outbox = try Outbox(directory: directory + "/outbox")
            executor = try Executor(
                workDir: workDir, runAs: runAs, maskedSecrets: maskedSecrets, outbox: outbox, killGraceSeconds: 1, logger: Logger(label: "test"))
        }

        func envelope(_ steps: [StepSpec], params: [String: String] = [:], timeout: Int = 30) -> RunEnvelope {
            RunEnvelope(
                runId: Secrets.newID(), taskId: Secrets.newID(), agentId: Secrets.newID(), zone: "z", steps: steps, params: .init(additionalProperties: params),
                timeoutSeconds: timeout, issuedAt: 0, expiresAt: Int64.max, signature: "")
        }

        func output(_ runID: String) async -> String {
            await outbox.report(agentID: "a", maxItems: 100_000).logs.filter { $0.runId == runID }.map(\.data).joined()
        }

        func chunks(_ runID: String) async -> [LogChunk] {
            await outbox.report(agentID: "a", maxItems: 100_000, maxBytes: Int.max).logs.filter { $0.runId == runID }
        }
    }

    /// Whether any process has `marker` in its command line.
    static func processExists(_ marker: String) -> Bool { Processes.exist(marker) }

    /// Waits, with a deadline, until no process carries the marker (generous: a killed process group
    /// is reaped slowly on a loaded machine).
    static func waitUntilGone(_ marker: String, within seconds: Double = 30) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(TestTime.scaled(seconds))
        while ContinuousClock.now < deadline {
            if !processExists(marker) { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return !processExists(marker)
    }

    @Test func parametersReachTheScriptOnlyThroughEnvironmentAndFiles() async throws {
        let fixture = try Fixture()
        // A value that would run a command if it were interpolated into the script.
        let hostile = "$(touch \(fixture.directory)/pwned); `id`; 'quote\""
        let envelope = fixture.envelope(
            [
                StepSpec(script: #"printf '%s\n' "$KLEVR_PARAM_WHO"; cat "$KLEVR_PARAMS_FILE"; echo; echo "step1-result" > "$KLEVR_RESULT_FILE""#),
                StepSpec(script: #"cat "$KLEVR_PREVIOUS_RESULT_FILE"; echo "$TASK_RESULT"; echo '{"ok":true}' > "$KLEVR_RESULT_FILE"; echo err >&2"#),
            ], params: ["WHO": hostile])
        let result = await fixture.executor.execute(envelope, control: RunControl())
        #expect(result.outcome == .succeeded)
        #expect(result.exitCode == 0)
        #expect(result.result == "{\"ok\":true}\n")
        let output = await fixture.output(envelope.runId)
        #expect(output.contains(hostile + "\n"))
        #expect(output.contains(#"{"WHO":"#))
        // Step 2 read step 1's result both from the file and from TASK_RESULT.
        #expect(output.components(separatedBy: "step1-result\n").count - 1 == 2)
        #expect(output.contains("err\n"))
        #expect(!FileManager.default.fileExists(atPath: fixture.directory + "/pwned"))
        let streams = await fixture.outbox.report(agentID: "a").logs.map(\.stream)
        #expect(streams.contains(.stderr) && streams.contains(.stdout))
    }

    @Test func aFailingStepEndsTheRunWithItsStatus() async throws {
        let fixture = try Fixture()
        let envelope = fixture.envelope([StepSpec(script: "echo one; exit 7"), StepSpec(script: "echo never")])
        let result = await fixture.executor.execute(envelope, control: RunControl())
        #expect(result.outcome == .failed)
        #expect(result.exitCode == 7)
        #expect(result.reason?.contains("step 1") == true)
        #expect(await fixture.output(envelope.runId) == "one\n")
    }

    @Test func timeoutKillsTheWholeProcessGroup() async throws {
        let fixture = try Fixture()
        let marker = "61.\(Int.random(in: 100_000...999_999))"
        let envelope = fixture.envelope([StepSpec(script: "sleep \(marker) & sleep \(marker); wait")], timeout: 1)
        let started = ContinuousClock.now
        let result = await fixture.executor.execute(envelope, control: RunControl())
        #expect(result.outcome == .timedOut)
        // Ended by the 1 s timeout, not by the 61 s sleeps (the bound is loose: a loaded machine is slow).
        #expect(ContinuousClock.now - started < .seconds(30))
        #expect(await Self.waitUntilGone(marker), "a sleep of the timed-out step survived")
    }

    @Test func stepTimeoutIsEnforcedToo() async throws {
        let fixture = try Fixture()
        let marker = "62.\(Int.random(in: 100_000...999_999))"
        let envelope = fixture.envelope([StepSpec(script: "sleep \(marker)", timeoutSeconds: 1)], timeout: 600)
        let result = await fixture.executor.execute(envelope, control: RunControl())
        #expect(result.outcome == .timedOut)
        #expect(await Self.waitUntilGone(marker))
    }

    @Test func cancelKillsARunningStep() async throws {
        let fixture = try Fixture()
        let marker = "63.\(Int.random(in: 100_000...999_999))"
        let envelope = fixture.envelope([StepSpec(script: "echo started; sleep \(marker) & sleep \(marker); wait")], timeout: 600)
        let control = RunControl()
        async let result = fixture.executor.execute(envelope, control: control)
        // Cancel once the step has produced its first output (a condition, with a deadline).
        let deadline = ContinuousClock.now + .seconds(20)
        while await fixture.output(envelope.runId).isEmpty && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        await control.stop(.canceled)
        let finished = await result
        #expect(finished.outcome == .canceled)
        #expect(await Self.waitUntilGone(marker))
    }

    @Test func theAgentsOwnEnvironmentDoesNotLeak() async throws {
        let fixture = try Fixture()
        setenv("KLEVR_ENROLL_KEY", "kle_must_not_leak", 1)
        defer { unsetenv("KLEVR_ENROLL_KEY") }
        let envelope = fixture.envelope([StepSpec(script: "env")])
        _ = await fixture.executor.execute(envelope, control: RunControl())
        let output = await fixture.output(envelope.runId)
        #expect(output.contains("KLEVR_RUN_ID=\(envelope.runId)"))
        #expect(!output.contains("kle_must_not_leak"))
    }
}
