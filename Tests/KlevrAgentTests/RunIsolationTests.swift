import Foundation
import KlevrAPI
import KlevrAgent
import KlevrCore
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A script cannot read the agent's files or another run's parameters, and leaves nothing behind.
@Suite(.timeLimit(.minutes(2)))
struct RunIsolationTests {
    typealias Fixture = ExecutorTests.Fixture

    static func entries(_ path: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
    }

    @Test func aScriptFindsNoAgentFilesAndNoEarlierRunsParameters() async throws {
        let fixture = try Fixture()
        let identity = "FAKE-IDENTITY-\(UUID().uuidString)"
        try Data(#"{"credential":"\#(identity)"}"#.utf8).write(to: URL(fileURLWithPath: fixture.directory + "/identity.json"))
        let earlier = "EARLIER-PARAM-\(UUID().uuidString)"
        let first = fixture.envelope([StepSpec(script: "echo first > \"$KLEVR_RESULT_FILE\"")], params: ["VALUE": earlier])
        #expect(await fixture.executor.execute(first, control: RunControl()).outcome == .succeeded)

        let mine = "OWN-PARAM-\(UUID().uuidString)"
        let snoop = fixture.envelope(
            [StepSpec(script: "pwd; ls -laR . ..; find .. -type f -exec cat {} +; cat ../*/* ../../identity.json 2>&1; true")],
            params: ["MINE": mine])
        #expect(await fixture.executor.execute(snoop, control: RunControl()).outcome == .succeeded)
        let output = await fixture.output(snoop.runId)
        // The walk worked: it found this run's own parameters file, in its own directory under the work dir.
        #expect(output.contains(mine))
        #expect(output.contains(fixture.workDir + "/" + snoop.runId))
        #expect(!output.contains(earlier))
        #expect(!output.contains(identity))
        #expect(!output.contains("outbox"))
    }

    @Test func theRunDirectoryIsRemovedWhenTheRunEnds() async throws {
        let fixture = try Fixture()
        let succeeded = fixture.envelope([StepSpec(script: "mkdir -p deep/er; echo x > deep/er/file; chmod 000 deep; pwd")])
        #expect(await fixture.executor.execute(succeeded, control: RunControl()).outcome == .succeeded)
        #expect(await fixture.output(succeeded.runId) == fixture.workDir + "/" + succeeded.runId + "\n")
        let failed = fixture.envelope([StepSpec(script: "echo x > left; exit 4")], params: ["P": "v"])
        #expect(await fixture.executor.execute(failed, control: RunControl()).outcome == .failed)
        let timedOut = fixture.envelope([StepSpec(script: "echo x > left; sleep 30")], timeout: 1)
        #expect(await fixture.executor.execute(timedOut, control: RunControl()).outcome == .timedOut)
        #expect(Self.entries(fixture.workDir).isEmpty)
        var status = stat()
        #expect(lstat(fixture.workDir, &status) == 0)
        #expect(status.st_mode & 0o777 == 0o700)
    }

    @Test func runDirectoriesLeftByACrashAreRemovedAtStart() async throws {
        let fixture = try Fixture()
        let stale = fixture.workDir + "/" + Secrets.newID()
        try FileManager.default.createDirectory(atPath: stale + "/sub", withIntermediateDirectories: true)
        try Data("{\"P\":\"left behind\"}".utf8).write(to: URL(fileURLWithPath: stale + "/params.json"))
        _ = try Executor(workDir: fixture.workDir, outbox: fixture.outbox, killGraceSeconds: 1, logger: .init(label: "test"))
        #expect(Self.entries(fixture.workDir).isEmpty)
    }

    @Test func aWorkDirectoryHoldingOtherFilesIsRefusedAndLeftAlone() async throws {
        let fixture = try Fixture()
        let foreign = fixture.workDir + "/notes.txt"
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: foreign))
        #expect(throws: (any Error).self) {
            _ = try Executor(workDir: fixture.workDir, outbox: fixture.outbox, killGraceSeconds: 1, logger: .init(label: "test"))
        }
        #expect(FileManager.default.contents(atPath: foreign) == Data("keep me".utf8))
    }

    @Test func aResultFileThatLinksElsewhereIsNotRead() async throws {
        let fixture = try Fixture()
        let identity = "FAKE-IDENTITY-\(UUID().uuidString)"
        try Data(identity.utf8).write(to: URL(fileURLWithPath: fixture.directory + "/identity.json"))
        let envelope = fixture.envelope([StepSpec(script: "ln -s '\(fixture.directory)/identity.json' \"$KLEVR_RESULT_FILE\"")])
        let result = await fixture.executor.execute(envelope, control: RunControl())
        #expect(result.outcome == .succeeded)
        #expect(result.result == nil)
    }

    @Test func anUnknownRunAsUserIsAStartupError() async throws {
        let fixture = try Fixture()
        #expect(throws: ScriptUser.LookupError.unknownUser("klevr-no-such-user")) {
            _ = try Executor(
                workDir: fixture.workDir, runAs: "klevr-no-such-user", outbox: fixture.outbox, killGraceSeconds: 1, logger: .init(label: "test"))
        }
    }

    @Test(.enabled(if: getuid() == 0 && (try? ScriptUser.lookup("nobody")) != nil, "needs root and a user 'nobody'"))
    func stepsRunAsTheRunAsUser() async throws {
        let nobody = try ScriptUser.lookup("nobody")
        let fixture = try Fixture(runAs: "nobody")
        let envelope = fixture.envelope(
            [
                StepSpec(
                    script: """
                        id -u; id -g; echo "home=$HOME user=$USER logname=$LOGNAME"; cat "$KLEVR_PARAMS_FILE"; echo
                        ls '\(fixture.directory)' >/dev/null 2>&1 && echo STATE-LISTED || echo STATE-DENIED
                        ls .. >/dev/null 2>&1 && echo WORK-LISTED || echo WORK-DENIED
                        echo done > "$KLEVR_RESULT_FILE"
                        """)
            ], params: ["P": "param-value"])
        let result = await fixture.executor.execute(envelope, control: RunControl())
        let output = await fixture.output(envelope.runId)
        #expect(result.outcome == .succeeded, "\(output)")
        #expect(result.result == "done\n")
        #expect(output.hasPrefix("\(nobody.uid)\n\(nobody.gid)\n"))
        #expect(output.contains("home=\(nobody.home) user=nobody logname=nobody"))
        #expect(output.contains(#"{"P":"param-value"}"#))
        #expect(output.contains("STATE-DENIED"))
        #expect(output.contains("WORK-DENIED"))
        #expect(Self.entries(fixture.workDir).isEmpty)
    }
}
