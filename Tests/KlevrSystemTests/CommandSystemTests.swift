import Foundation
import KlevrAPI
import KlevrClient
import KlevrCore
import KlevrTestSupport
import OpenAPIRuntime
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Every built-in command through real agent processes: one with a manager route, one behind the
/// zone's primary (relay), and the agent's own stop (restart, graceful and forced shutdown).
@Suite(.serialized, .timeLimit(.minutes(5)), .waitsForProcesses)
struct CommandSystemTests {
    static func args(_ json: String) throws -> OpenAPIObjectContainer {
        try JSONDecoder().decode(OpenAPIObjectContainer.self, from: Data(json.utf8))
    }

    static func json(_ text: String?) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(try #require(text, "no result").utf8))
    }

    /// Runs the steps on the agent and returns the ended run.
    static func run(_ cluster: Cluster, on agent: String, _ steps: [StepSpec], seconds: Double = 60) async throws -> Components.Schemas.Run {
        let task = try await cluster.createTask(.init(zone: "z", target: .agent(agent), steps: steps))
        let runID = try #require(task.runs.first?.id)
        try await eventually(seconds, "run \(runID) ends") { try await cluster.run(runID).status.isTerminal }
        return try await cluster.run(runID)
    }

    static func started(_ cluster: Cluster, on agent: String, _ script: String) async throws -> String {
        let task = try await cluster.createTask(.init(zone: "z", target: .agent(agent), steps: [.init(script: script)]))
        let runID = try #require(task.runs.first?.id)
        try await eventually(60, "run \(runID) is running") { try await cluster.run(runID).status == .running }
        return runID
    }

    /// Waits until the agent's process has exited; its exit status.
    static func exitStatus(_ process: KlevrProcess?, within seconds: Double) async throws -> Int32 {
        let process = try #require(process)
        try await eventually(seconds, "the agent process exits") { !process.process.isRunning }
        return process.process.terminationStatus
    }

    @Test func everyQueryAndFileCommandRunsOnARealAgent() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "z")
        let id = try await cluster.startAgent("a", zone: "z")

        let info = try await Self.run(cluster, on: id, [.init(command: "agent.info")])
        #expect(info.status == .succeeded, "\(info.reason ?? "")")
        let infoResult = try Self.json(info.result)
        #expect(infoResult["agentId"]?.stringValue == id)
        #expect(infoResult["zone"] == "z")
        #expect(infoResult["hasManagerRoute"] == true)
        #expect(infoResult["logLevel"] == "debug")

        let facts = try await Self.run(cluster, on: id, [.init(command: "host.facts")])
        let factsResult = try Self.json(facts.result)
        #expect((factsResult["cpuCount"]?.integerValue ?? 0) >= 1)
        #expect(factsResult["hostname"]?.stringValue?.isEmpty == false)

        let level = try await Self.run(cluster, on: id, [.init(command: "agent.set-log-level", args: try Self.args(#"{"level": "notice"}"#))])
        #expect(try Self.json(level.result) == ["before": "debug", "current": "notice"])
        // At notice, the agent's info lines are no longer written; what was written before is collected.
        let logs = try await Self.run(cluster, on: id, [.init(command: "agent.collect-logs", args: try Self.args(#"{"lines": 50}"#))])
        let lines = try Self.json(logs.result)["lines"]
        guard case .array(let items)? = lines else { throw TestFailure("no lines in \(logs.result ?? "")") }
        #expect(!items.isEmpty)
        #expect(items.contains { $0.stringValue?.contains("log level changed by a built-in command") == true }, "\(items.suffix(5))")
        #expect(!items.contains { $0.stringValue?.contains("running a built-in command") == true && $0.stringValue?.contains(logs.id) == true })

        // file.put, a script reading its result, file.get: chained in one run.
        let path = cluster.directory + "/put-by-command.txt"
        let content = Data("written by file.put\n".utf8).base64EncodedString()
        let files = try await Self.run(
            cluster, on: id,
            [
                .init(command: "file.put", args: try Self.args(#"{"path": "\#(path)", "content": "\#(content)", "mode": "0640"}"#)),
                .init(script: #"grep -o '"size":[0-9]*' "$KLEVR_PREVIOUS_RESULT_FILE""#),
                .init(command: "file.get", args: try Self.args(#"{"path": "\#(path)"}"#)),
            ])
        #expect(files.status == .succeeded, "\(files.reason ?? "")")
        #expect(try await cluster.output(files.id) == "\"size\":20\n")
        #expect(try Self.json(files.result)["content"]?.stringValue == content)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "written by file.put\n")

        // agent.running-runs and run.stop on a run that sleeps.
        let long = try await Self.started(cluster, on: id, "sleep 300")
        let running = try await Self.run(cluster, on: id, [.init(command: "agent.running-runs")])
        guard case .array(let runs)? = try Self.json(running.result)["runs"] else { throw TestFailure("no runs in \(running.result ?? "")") }
        #expect(runs.contains { $0["runId"]?.stringValue == long && $0["state"] == "running" }, "\(runs)")
        let stop = try await Self.run(cluster, on: id, [.init(command: "run.stop", args: try Self.args(#"{"runId": "\#(long)"}"#))])
        #expect(try Self.json(stop.result) == ["runId": .string(long), "outcome": "stopped"])
        try await eventually(60, "the stopped run ends canceled") { try await cluster.run(long).status == .canceled }

        // The CLI lists the registry.
        let table = try await cluster.runCLI(["command", "list"])
        #expect(table.status == 0, "\(table.output)")
        for command in BuiltinCommands.all { #expect(table.output.contains(command.name.rawValue)) }
        #expect(table.output.contains("content* mode path*"), "\(table.output)")
        let listed = try await cluster.runCLI(["command", "list", "--output", "json"])
        #expect(listed.status == 0)
        #expect(listed.output.contains("\"contentEncoding\""), "\(listed.output.prefix(300))")
        // And runs one, printing its result.
        let facts2 = try await cluster.runCLI(["task", "run", "--zone", "z", "--agent", id, "--command", "host.facts"])
        #expect(facts2.status == 0, "\(facts2.output)")
        #expect(facts2.output.contains("\"cpuCount\""), "\(facts2.output)")
        // A task file with command steps.
        let file = cluster.directory + "/commands.yaml"
        try """
            zone: z
            target: { kind: agent, agentId: \(id) }
            steps:
              - command: file.put
                args: { path: \(cluster.directory)/from-task-file, content: aGVsbG8K, mode: "0600" }
              - script: cat "$KLEVR_PREVIOUS_RESULT_FILE"
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let created = try await cluster.runCLI(["task", "create", "-f", file, "--wait"])
        #expect(created.status == 0, "\(created.output)")
        #expect(created.output.contains(#""mode":"0600""#), "\(created.output)")
        #expect(try String(contentsOfFile: cluster.directory + "/from-task-file", encoding: .utf8) == "hello\n")
        let wrong = try await cluster.runCLI(["task", "run", "--zone", "z", "--agent", id, "--command", "agent.set-log-level", "--args", #"{"level": "loud"}"#])
        #expect(wrong.status != 0)
        #expect(wrong.output.contains("steps[0].args.level"), "\(wrong.output)")
    }

    @Test func commandsReachASecondaryBehindTheRelayAndARestartRunsOnce() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "z")
        try await cluster.startAgent("a", zone: "z")
        try await cluster.startAgent("b", zone: "z")
        let member = try await cluster.startAgent("c", zone: "z", viaPeers: ["a", "b"])
        try await eventually(60, "a primary is elected") { try await cluster.zone("z").primary != nil }

        let info = try await Self.run(cluster, on: member, [.init(command: "agent.info")])
        #expect(info.status == .succeeded, "\(info.reason ?? "")")
        #expect(try Self.json(info.result)["hasManagerRoute"] == false)
        #expect(try Self.json(info.result)["agentId"]?.stringValue == member)

        let oldProcess = cluster.agents["c"]
        let restart = try await Self.run(cluster, on: member, [.init(command: "agent.restart"), .init(script: "echo must-not-run")])
        #expect(restart.status == .succeeded, "\(restart.reason ?? "")")
        #expect(try Self.json(restart.result)["exitStatus"] == .integer(Int64(BuiltinCommands.restartExitStatus)))
        #expect(try await Self.exitStatus(oldProcess, within: 60) == BuiltinCommands.restartExitStatus)
        let firstLog = oldProcess?.log ?? ""
        #expect(firstLog.components(separatedBy: "running a built-in command").count - 1 == 2, "agent.info and agent.restart once each")
        #expect(try await cluster.output(restart.id).isEmpty)

        // The supervisor's part: started again, it takes new runs and never runs the restart again.
        try await cluster.startAgent("c", zone: "z", viaPeers: ["a", "b"])
        let after = try await Self.run(cluster, on: member, [.init(command: "agent.info")], seconds: 90)
        #expect(after.status == .succeeded, "\(after.reason ?? "")")
        let secondLog = cluster.agents["c"]?.log ?? ""
        #expect(!secondLog.contains(restart.id), "the restart run came back: \(secondLog.suffix(2000))")
        #expect(cluster.agents["c"]?.process.isRunning == true)
        #expect(try await cluster.run(restart.id).status == .succeeded)
    }

    @Test func aGracefulShutdownWaitsForTheRunningRun() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "z")
        let id = try await cluster.startAgent("a", zone: "z")
        let process = cluster.agents["a"]
        // The long run ends when the test says so, after the shutdown has started waiting.
        let go = cluster.directory + "/go"
        let long = try await Self.started(cluster, on: id, "while [ ! -e '\(go)' ]; do sleep 0.2; done; echo finished")
        let task = try await cluster.createTask(
            .init(zone: "z", target: .agent(id), steps: [.init(command: "agent.shutdown", args: try Self.args(#"{"mode": "graceful", "timeoutSeconds": 600}"#))]))
        let shutdownID = try #require(task.runs.first?.id)
        try await eventually(60, "the shutdown run is waiting") { try await cluster.run(shutdownID).status == .running }
        // It waits: the long run goes on, the agent stays up.
        try await Task.sleep(for: .seconds(1))
        #expect(try await cluster.run(shutdownID).status == .running)
        #expect(try await cluster.run(long).status == .running)
        #expect(process?.process.isRunning == true)
        FileManager.default.createFile(atPath: go, contents: nil)
        try await eventually(120, "the shutdown run ends") { try await cluster.run(shutdownID).status.isTerminal }
        let shutdown = try await cluster.run(shutdownID)
        #expect(shutdown.status == .succeeded, "\(shutdown.reason ?? "")")
        #expect(try Self.json(shutdown.result) == ["mode": "graceful", "finishedRuns": [.string(long)], "stoppedRuns": []])
        let longRun = try await cluster.run(long)
        #expect(longRun.status == .succeeded, "\(longRun.reason ?? "")")
        #expect(try await cluster.output(long) == "finished\n")
        #expect((longRun.finishedAt ?? .max) <= (shutdown.finishedAt ?? 0))
        #expect(try await Self.exitStatus(process, within: 60) == 0)
    }

    @Test func aForcedShutdownStopsTheRunningRunAndExitsPromptly() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "z")
        let id = try await cluster.startAgent("a", zone: "z")
        let process = cluster.agents["a"]
        let long = try await Self.started(cluster, on: id, "sleep 600")
        let shutdown = try await Self.run(cluster, on: id, [.init(command: "agent.shutdown", args: try Self.args(#"{"mode": "forced"}"#))])
        #expect(shutdown.status == .succeeded, "\(shutdown.reason ?? "")")
        #expect(try Self.json(shutdown.result) == ["mode": "forced", "finishedRuns": [], "stoppedRuns": [.string(long)]])
        // Well before the sleep would end.
        #expect(try await Self.exitStatus(process, within: 90) == 0)
        try await eventually(60, "the stopped run is reported") { try await cluster.run(long).status.isTerminal }
        let longRun = try await cluster.run(long)
        #expect(longRun.status == .failed)
        #expect(longRun.reason?.contains("shut down") == true, "\(longRun.reason ?? "")")
    }

    /// A socket listening on the loopback port (nil when it is taken already: it is held either way).
    static func listening(_ port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0, port < 65536 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard bound, listen(fd, 1) == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    @Test func klevrUpStartsAnAgentAgainAfterAgentRestart() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        // klevr up prefers the peer port listen port + 11: held by someone else, its agent takes another.
        let holder = Self.listening(cluster.port + 11)
        defer { if let holder { close(holder) } }
        let data = cluster.directory + "/up"
        cluster.manager = try KlevrProcess(
            ["up", "--data-dir", data, "--listen", "127.0.0.1:\(cluster.port)", "--agents", "1", "--log-level", "info"],
            logPath: cluster.directory + "/up.log")
        let probe = try cluster.client(credential: nil, timeout: .seconds(2))
        try await eventually(60, "klevr up answers /readyz") { (try? await probe.ready().ok) != nil }
        var password = ""
        try await eventually(30, "the admin password is written") {
            password = (try? String(contentsOfFile: data + "/admin-password", encoding: .utf8)) ?? ""
            return !password.isEmpty
        }
        let login = try await cluster.runCLI(["login", "--server", cluster.url, "--username", "admin", "--password", password])
        #expect(login.status == 0, "\(login.output)")
        struct SavedLogin: Decodable { var token: String }
        cluster.token = try JSONDecoder().decode(SavedLogin.self, from: Data(contentsOf: URL(fileURLWithPath: cluster.directory + "/cli.json"))).token
        var agentID = ""
        var peerAddress = ""
        try await eventually(60, "the local agent is online") {
            guard let agent = try await cluster.agents(zone: "local").first, agent.status == .online else { return false }
            agentID = agent.id
            peerAddress = agent.peerAddress ?? ""
            return true
        }
        #expect(!peerAddress.isEmpty && peerAddress != "127.0.0.1:\(cluster.port + 11)", "\(peerAddress)")
        func pid() async throws -> Int64? {
            let task = try await cluster.createTask(.init(zone: "local", target: .agent(agentID), steps: [.init(command: "agent.info")]))
            let runID = try #require(task.runs.first?.id)
            try await eventually(120, "agent.info ends") { try await cluster.run(runID).status.isTerminal }
            return try Self.json(try await cluster.run(runID).result)["pid"]?.integerValue
        }
        let before = try #require(try await pid())
        let restart = try await cluster.createTask(.init(zone: "local", target: .agent(agentID), steps: [.init(command: "agent.restart")]))
        let restartRun = try #require(restart.runs.first?.id)
        try await eventually(60, "the restart run ends") { try await cluster.run(restartRun).status.isTerminal }
        #expect(try await cluster.run(restartRun).status == .succeeded)
        // Started again by klevr up: the same agent answers from another process.
        let after = try #require(try await pid())
        #expect(after != before)
    }
}

/// A failure with a message, for guards in tests.
struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
