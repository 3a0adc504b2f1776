import Foundation
import KlevrAPI
@testable import KlevrAgent
import KlevrCore
import Logging
import OpenAPIRuntime
import Testing

/// Built-in command steps in the executor: results chain into script steps and back, file commands,
/// the in-memory log, stopping another run, and refusals.
@Suite(.timeLimit(.minutes(2)))
struct CommandStepExecutionTests {
    struct Fixture {
        let directory: String
        let outbox: Outbox
        let registry = RunRegistry()
        let lifecycle = AgentLifecycle()
        let log = AgentLog(level: .info)
        let executor: Executor

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("klevr-cmd-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory + "/state", withIntermediateDirectories: true)
            outbox = try Outbox(directory: directory + "/state/outbox")
            var executor = try Executor(workDir: directory + "-work", outbox: outbox, killGraceSeconds: 1, logger: Logger(label: "test"))
            executor.commands = BuiltinCommandRunner(
                agentID: "agent-1", zone: "z", zoneID: "zone-1", maxRuns: 4, hasManagerRoute: true, stateDir: directory + "/state",
                registry: registry, lifecycle: lifecycle, log: log, startedAt: Clock.nowMillis(), now: { Clock.nowMillis() },
                logger: Logger(label: "test"))
            self.executor = executor
        }

        func envelope(_ steps: [StepSpec], timeout: Int = 60) -> RunEnvelope {
            RunEnvelope(
                runId: Secrets.newID(), taskId: Secrets.newID(), agentId: "agent-1", zone: "z", steps: steps, params: .init(additionalProperties: [:]),
                timeoutSeconds: timeout, issuedAt: 0, expiresAt: Int64.max, signature: "")
        }

        /// Executes the envelope as the agent does: held in the registry while it runs.
        func execute(_ envelope: RunEnvelope) async -> RunResult {
            let control = await registry.add(envelope.runId, taskID: envelope.taskId)
            let result = await executor.execute(envelope, control: control)
            await registry.remove(envelope.runId)
            return result
        }

        func output(_ runID: String) async -> String {
            await outbox.report(agentID: "a", maxItems: 100_000).logs.filter { $0.runId == runID }.map(\.data).joined()
        }
    }

    static func args(_ json: String) throws -> OpenAPIObjectContainer {
        try JSONDecoder().decode(OpenAPIObjectContainer.self, from: Data(json.utf8))
    }

    static func json(_ text: String?) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(try #require(text).utf8))
    }

    @Test func resultsChainBetweenScriptsAndCommands() async throws {
        let fixture = try Fixture()
        let target = fixture.directory + "/greeting.txt"
        let content = Data("hello, files\n".utf8).base64EncodedString()
        let envelope = fixture.envelope([
            .init(command: "file.put", args: try Self.args(#"{"path": "\#(target)", "content": "\#(content)", "mode": "0600"}"#)),
            // The command's JSON result is the script's previous result.
            .init(script: #"cat "$KLEVR_PREVIOUS_RESULT_FILE"; echo; echo "$TASK_RESULT" | grep -q sha256 && echo task-result-too"#),
            .init(command: "file.get", args: try Self.args(#"{"path": "\#(target)"}"#)),
        ])
        let result = await fixture.execute(envelope)
        #expect(result.outcome == .succeeded, "\(result.reason ?? "")")
        let output = await fixture.output(envelope.runId)
        #expect(output.contains(#""size":13"#), "\(output)")
        #expect(output.contains("task-result-too"), "\(output)")
        let got = try Self.json(result.result)
        #expect(got["content"]?.stringValue == content)
        #expect(got["size"] == 13)
        #expect(got["sha256"]?.stringValue?.count == 64)
        let attributes = try FileManager.default.attributesOfItem(atPath: target)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        // No temporary file is left next to it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.directory).filter { $0.contains("klevr-") }.isEmpty)
    }

    @Test func fileCommandsRefuseTheStateDirectoryAndLargeFiles() async throws {
        let fixture = try Fixture()
        let secret = fixture.directory + "/state/identity.json"
        FileManager.default.createFile(atPath: secret, contents: Data("{}".utf8))
        // Also through a link to the state directory.
        try FileManager.default.createSymbolicLink(atPath: fixture.directory + "/link", withDestinationPath: fixture.directory + "/state")
        for path in [secret, fixture.directory + "/link/identity.json"] {
            let get = await fixture.execute(fixture.envelope([.init(command: "file.get", args: try Self.args(#"{"path": "\#(path)"}"#))]))
            #expect(get.outcome == .failed)
            #expect(get.reason?.contains("state directory") == true, "\(get.reason ?? "")")
            let put = await fixture.execute(
                fixture.envelope([.init(command: "file.put", args: try Self.args(#"{"path": "\#(path)", "content": "eA=="}"#))]))
            #expect(put.outcome == .failed)
        }
        #expect(try String(contentsOfFile: secret, encoding: .utf8) == "{}")
        let big = fixture.directory + "/big"
        FileManager.default.createFile(atPath: big, contents: Data(count: 100))
        let get = await fixture.execute(fixture.envelope([.init(command: "file.get", args: try Self.args(#"{"path": "\#(big)", "maxBytes": 99}"#))]))
        #expect(get.outcome == .failed)
        #expect(get.reason?.contains("100 bytes") == true, "\(get.reason ?? "")")
    }

    @Test func theLogLevelChangesAndRecentLinesAreCollected() async throws {
        let fixture = try Fixture()
        var logger = Logger(label: "agent") { label in
            AgentLogHandler(label: label, log: fixture.log, inner: SwiftLogNoOpLogHandler())
        }
        logger[metadataKey: "k"] = "v"
        logger.debug("hidden at info")
        logger.info("line one")
        let set = await fixture.execute(fixture.envelope([.init(command: "agent.set-log-level", args: try Self.args(#"{"level": "debug"}"#))]))
        #expect(try Self.json(set.result) == ["before": "info", "current": "debug"])
        logger.debug("shown at debug")
        let collected = await fixture.execute(fixture.envelope([.init(command: "agent.collect-logs", args: try Self.args(#"{"lines": 2}"#))]))
        let lines = try Self.json(collected.result)["lines"]
        guard case .array(let items)? = lines else {
            Issue.record("no lines: \(collected)")
            return
        }
        #expect(items.count == 2)
        #expect(items.last?.stringValue?.hasSuffix("shown at debug") == true, "\(items)")
        #expect(items.first?.stringValue?.contains("k=v") == true, "\(items)")
        #expect(!items.contains { $0.stringValue?.contains("hidden") == true })
    }

    @Test func theLogRingIsBounded() {
        let log = AgentLog(level: .info, capacity: 3)
        for index in 1...5 { log.record("line \(index)") }
        let all = log.recent(10)
        #expect(all.lines == ["line 3", "line 4", "line 5"])
        #expect(all.dropped)
        #expect(!all.truncated)
        let two = log.recent(2)
        #expect(two.lines == ["line 4", "line 5"])
        #expect(two.truncated)
        // The byte bound keeps the newest lines that fit.
        #expect(log.recent(10, maxBytes: 14).lines == ["line 4", "line 5"])
        log.record(String(repeating: "x", count: 10_000))
        #expect((log.recent(1).lines.first?.utf8.count ?? 0) <= AgentLog.maxLineBytes + 3)
    }

    @Test func runStopCancelsAnotherRunAndRunningRunsListsIt() async throws {
        let fixture = try Fixture()
        let long = fixture.envelope([.init(script: "sleep 60")])
        async let longResult = fixture.execute(long)
        var listed: JSONValue = .null
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let runs = await fixture.execute(fixture.envelope([.init(command: "agent.running-runs")]))
            listed = try Self.json(runs.result)
            if case .array(let items)? = listed["runs"], items.contains(where: { $0["runId"]?.stringValue == long.runId }) { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(listed["runs"] == [["runId": .string(long.runId), "taskId": .string(long.taskId), "state": "waiting", "since": 0]])
        let stop = await fixture.execute(fixture.envelope([.init(command: "run.stop", args: try Self.args(#"{"runId": "\#(long.runId)"}"#))]))
        #expect(try Self.json(stop.result) == ["runId": .string(long.runId), "outcome": "stopped"])
        #expect(await longResult.outcome == .canceled)
        let again = await fixture.execute(fixture.envelope([.init(command: "run.stop", args: try Self.args(#"{"runId": "\#(long.runId)"}"#))]))
        #expect(try Self.json(again.result)["outcome"] == "not_running")
    }

    @Test func unknownCommandsAndStepsFailWithTheReasonAndRunNothingAfter() async throws {
        let fixture = try Fixture()
        let marker = fixture.directory + "/ran"
        let unknown = await fixture.execute(fixture.envelope([.init(command: "agent.teleport"), .init(script: "touch \(marker)")]))
        #expect(unknown.outcome == .failed)
        #expect(unknown.reason?.contains("does not know the command 'agent.teleport'") == true, "\(unknown.reason ?? "")")
        let empty = await fixture.execute(fixture.envelope([.init(name: "future"), .init(script: "touch \(marker)")]))
        #expect(empty.outcome == .failed)
        #expect(empty.reason?.contains("neither a script nor a built-in command") == true, "\(empty.reason ?? "")")
        let wrong = await fixture.execute(fixture.envelope([.init(command: "file.get", args: try Self.args(#"{"path": "relative"}"#))]))
        #expect(wrong.reason?.contains("path: must be an absolute path") == true, "\(wrong.reason ?? "")")
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    @Test func restartReportsThenAsksTheAgentToExitAndEndsTheRun() async throws {
        let fixture = try Fixture()
        let marker = fixture.directory + "/after"
        let result = await fixture.execute(fixture.envelope([.init(command: "agent.restart"), .init(script: "touch \(marker)")]))
        #expect(result.outcome == .succeeded)
        #expect(try Self.json(result.result)["exitStatus"] == .integer(Int64(BuiltinCommands.restartExitStatus)))
        #expect(await fixture.lifecycle.exit?.status == BuiltinCommands.restartExitStatus)
        #expect(await fixture.lifecycle.draining)
        #expect(!FileManager.default.fileExists(atPath: marker))
    }
}
