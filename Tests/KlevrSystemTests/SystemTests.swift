import Foundation
import KlevrAPI
import KlevrAgent
import KlevrClient
import KlevrCore
import KlevrTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Real `klevr` processes: a manager and agents on loopback, killed and restarted.
@Suite(.serialized, .timeLimit(.minutes(5)), .waitsForProcesses)
struct SystemTests {
    /// Kills leftover processes whose command line carries the marker (what a SIGKILLed agent orphaned).
    static func killProcesses(with marker: String) { Processes.kill(marker) }

    static func processExists(_ marker: String) -> Bool { Processes.exist(marker) }

    @Test func theCLIRunsATaskOnEveryAgentAndReportsFailure() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "local")
        for name in ["a", "b", "c"] { try await cluster.startAgent(name, zone: "local") }

        let ok = try await cluster.runCLI(
            ["task", "run", "--zone", "local", "--all", "--param", "WHO=klevr-test", "--", #"uname -n; echo "hello $KLEVR_PARAM_WHO""#])
        #expect(ok.status == 0, "\(ok.output)")
        #expect(ok.output.components(separatedBy: "hello klevr-test").count - 1 == 3, "\(ok.output)")
        #expect(ok.output.components(separatedBy: "] succeeded").count - 1 == 3)

        let failing = try await cluster.runCLI(["task", "run", "--zone", "local", "--any", "--", "echo about-to-fail; exit 4"])
        #expect(failing.status != 0)
        #expect(failing.output.contains("exited with status 4"), "\(failing.output)")

        // Timeout through the whole stack: ends timed_out and leaves no process behind.
        let marker = "60.\(Int.random(in: 100_000...999_999))"
        let timed = try await cluster.runCLI(["task", "run", "--zone", "local", "--any", "--timeout", "2", "--", "sleep \(marker) & sleep \(marker); wait"])
        #expect(timed.status != 0)
        #expect(timed.output.contains("timed_out"), "\(timed.output)")
        try await eventually(20, "no sleep of the timed-out run survives") { !Self.processExists(marker) }

        // No secret in any process's log (agents and manager log at debug level here).
        let credentials = try ["a", "b", "c"].compactMap { try AgentIdentity.load(stateDir: cluster.directory + "/agents/" + $0) }
        let secrets = [cluster.enrollKey, cluster.token, Cluster.password] + credentials.flatMap { [$0.credential, $0.privateKey, $0.sealPrivateKey ?? ""] }
        let logs = (cluster.agents.values.map(\.log) + [cluster.manager?.log ?? ""]).joined(separator: "\n")
        #expect(!logs.isEmpty)
        for secret in secrets where !secret.isEmpty {
            #expect(!logs.contains(secret), "a secret is in a process log")
        }
    }

    @Test func cancelOfARunningRunKillsItsProcesses() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "z")
        let agent = try await cluster.startAgent("a", zone: "z")
        let marker = "64.\(Int.random(in: 100_000...999_999))"
        let task = try await cluster.createTask(
            .init(zone: "z", target: .agent(agent), steps: [.init(script: "echo up; sleep \(marker) & sleep \(marker); wait")]))
        let runID = try #require(task.runs.first?.id)
        try await eventually(60, "the run is running") { try await cluster.run(runID).status == .running && Self.processExists(marker) }
        _ = try await cluster.api.cancelRun(path: .init(id: runID)).ok.body.json
        try await eventually(30, "the run is canceled") { try await cluster.run(runID).status == .canceled }
        try await eventually(20, "no sleep of the canceled run survives") { !Self.processExists(marker) }
        #expect(try await cluster.output(runID) == "up\n")
    }

    @Test func anAgentKilledMidRunReportsItAndRunsNothingTwice() async throws {
        let cluster = try Cluster()
        let marker = "65.\(Int.random(in: 100_000...999_999))"
        defer {
            cluster.shutdown()
            Self.killProcesses(with: marker)
        }
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "z")
        let victim = try await cluster.startAgent("victim", zone: "z")
        let healthy = try await cluster.startAgent("healthy", zone: "z")

        let long = try await cluster.createTask(
            .init(zone: "z", target: .agent(victim), steps: [.init(script: "echo begin; sleep \(marker); echo end")]))
        var others: [String] = []
        for index in 0..<5 {
            let task = try await cluster.createTask(
                .init(
                    zone: "z", target: .agent(healthy),
                    steps: [.init(script: "for i in 1 2 3 4 5; do echo run\(index)-line$i; done")]))
            others += task.runs.map(\.id)
        }
        let runID = try #require(long.runs.first?.id)
        try await eventually(60, "the long run started and its first line is stored") {
            try await cluster.output(runID) == "begin\n"
        }
        await cluster.agents["victim"]?.kill9()
        try await cluster.startAgent("victim", zone: "z")
        try await eventually(30, "the interrupted run ends with a definite status") { try await cluster.run(runID).status.isTerminal }
        let run = try await cluster.run(runID)
        #expect(run.status == .failed)
        #expect(run.reason?.contains("while the run was executing") == true, "\(run.reason ?? "-")")
        #expect(try await cluster.output(runID) == "begin\n", "executed once, never restarted")
        try await eventually(30, "the restarted agent killed what the killed one left running") { !Self.processExists(marker) }

        for id in others {
            try await eventually(30, "run \(id) succeeded") { try await cluster.run(id).status == .succeeded }
            let output = try await cluster.output(id)
            let lines = output.split(separator: "\n")
            #expect(lines.count == 5, "\(output)")
            #expect(Set(lines).count == 5)
        }
    }

    @Test func aManagerKilledDuringFanOutLosesNoResult() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "z")
        try await cluster.startAgent("a", zone: "z")
        try await cluster.startAgent("b", zone: "z")
        // Each script leaves a file named after its run here as its last act.
        let ended = cluster.directory + "/ended"
        try FileManager.default.createDirectory(atPath: ended, withIntermediateDirectories: true)
        var runs: [String] = []
        for index in 0..<4 {
            let task = try await cluster.createTask(
                .init(
                    zone: "z", target: .everyAgent,
                    steps: [
                        .init(
                            script:
                                "for i in 1 2 3 4 5 6; do echo task\(index)-line$i; sleep 0.4; done; echo done > \"$KLEVR_RESULT_FILE\"; touch '\(ended)'/$KLEVR_RUN_ID"
                        )
                    ]))
            runs += task.runs.map(\.id)
        }
        #expect(runs.count == 8)
        try await eventually(60, "every run started") {
            for id in runs where try await cluster.run(id).startedAt == nil { return false }
            return true
        }
        await cluster.manager?.kill9()
        // The runs finish while the manager is down; the agents keep everything in their outboxes.
        try await eventually(60, "every run's script ended while the manager is down") {
            Set((try? FileManager.default.contentsOfDirectory(atPath: ended)) ?? []) == Set(runs)
        }
        try await cluster.startManager()
        for id in runs {
            try await eventually(60, "run \(id) stored as succeeded after the restart") { try await cluster.run(id).status == .succeeded }
            let run = try await cluster.run(id)
            #expect(run.result == "done\n")
            let lines = try await cluster.output(id).split(separator: "\n")
            #expect(lines.count == 6, "\(lines)")
            #expect(Set(lines).count == 6, "no line stored twice")
        }
    }
}
