import Foundation
import KlevrAPI
import KlevrClient
import KlevrAgent
import KlevrTestSupport
import NIOHTTP1
import Testing

/// A manager asked to stop (SIGTERM, as systemd and `klevr up` do) stops, whoever follows it live.
@Suite(.serialized, .timeLimit(.minutes(5)), .waitsForProcesses)
struct ShutdownSystemTests {
    @Test func openFollowStreamsDoNotKeepAStoppingManagerRunning() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "local")
        let agent = try await cluster.startAgent("a", zone: "local")
        let task = try await cluster.createTask(.init(zone: "local", target: .agent(agent), steps: [.init(script: "echo started; sleep 600")]))
        let runID = try #require(task.runs.first).id

        // Two open streams: the event log and the running run's log, as a browser and `run logs -f` hold them.
        let events = try KlevrProcess(["events", "-f"], environment: cluster.cliEnvironment, logPath: cluster.directory + "/events-follow.log")
        defer { events.stopInBackground() }
        let logs = try KlevrProcess(["run", "logs", "-f", runID], environment: cluster.cliEnvironment, logPath: cluster.directory + "/logs-follow.log")
        defer { logs.stopInBackground() }
        try await eventually(60, "the run's output reaches its follower") { logs.log.contains("started") }
        // The follower prints what it receives live: a zone created after it connected shows it follows.
        var attempt = 0
        try await eventually(60, "the event follower prints a new event live") {
            if events.log.contains("zone.created") { return true }
            attempt += 1
            let created = try await cluster.runCLI(["zone", "create", "probe-\(attempt)"])
            #expect(created.status == 0, "\(created.output)")
            try await Task.sleep(for: .seconds(2))
            return events.log.contains("zone.created")
        }
        #expect(logs.process.isRunning && events.process.isRunning, "a follower ended early: \(logs.log) \(events.log)")

        let manager = try #require(cluster.manager)
        kill(manager.pid, SIGTERM)
        // Before streams ended on a graceful shutdown, the manager served them until the clients left.
        try await eventually(60, "the manager exits after SIGTERM with two streams open") { !manager.process.isRunning }
        #expect(manager.process.terminationStatus == 0, "\(manager.log)")
    }
}

/// The manager installed without the resource folders it needs says so, and never crashes.
@Suite(.serialized, .timeLimit(.minutes(5)), .waitsForProcesses)
struct InstallSystemTests {
    /// The binary alone in a fresh folder (a hard link, or a copy across file systems), with the named
    /// resource folders of the build copied beside it.
    static func install(in folder: URL, resources: [String]) throws -> String {
        let fm = FileManager.default
        try fm.createDirectory(at: folder, withIntermediateDirectories: true)
        let binary = URL(fileURLWithPath: Cluster.binary).resolvingSymlinksInPath()
        let installed = folder.appendingPathComponent("klevr")
        do { try fm.linkItem(at: binary, to: installed) } catch { try fm.copyItem(at: binary, to: installed) }
        for name in resources {
            try fm.copyItem(
                at: binary.deletingLastPathComponent().appendingPathComponent(name), to: folder.appendingPathComponent(name))
        }
        return installed.path
    }

    @Test func aManagerWithoutItsAPIDocumentNamesTheMissingFolderAndExits() async throws {
        let folder = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("klevr-install-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let binary = try Self.install(in: folder, resources: [])
        // Touched here and by the thread that reads its output (the read blocks: not on the cooperative pool).
        nonisolated(unsafe) let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["manager", "--data-dir", folder.path + "/data", "--listen", "127.0.0.1:\(try LoopbackPort.free())",
            "--admin-password", "install-test-password-1"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        nonisolated(unsafe) let reading = output.fileHandleForReading
        let text = await onOwnThread { String(decoding: reading.readDataToEndOfFile(), as: UTF8.self) }
        try await eventually(60, "the manager exits") { !process.isRunning }
        // An exit with a status and the reason, not SwiftPM's fatalError (a trap, SIGILL).
        #expect(process.terminationReason == .exit && process.terminationStatus == 1, "\(process.terminationReason) \(text)")
        #expect(text.contains(folder.appendingPathComponent("klevr_KlevrAPI.resources").path + " was not found"), "\(text)")
    }

    @Test func aManagerWithoutItsConsoleServesTheAPIAndSaysTheConsoleIsMissing() async throws {
        let folder = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("klevr-install-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let binary = try Self.install(in: folder, resources: ["klevr_KlevrAPI.resources"])
        let port = try LoopbackPort.free()
        // Touched here and by the thread that waits for its end.
        nonisolated(unsafe) let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["manager", "--data-dir", folder.path + "/data", "--listen", "127.0.0.1:\(port)", "--admin-password", "install-test-password-1"]
        let log = folder.appendingPathComponent("manager.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        defer {
            // Waited for off the cooperative pool; the test waits for that at its end (waitsForProcesses).
            process.terminate()
            ProcessReaper.inBackground { process.waitForExit() }
        }
        var health: RawHTTP.Answer?
        try await eventually(60, "the API answers") {
            health = try await RawHTTP.send(.GET, "http://127.0.0.1:\(port)/api/v1/agent/hello")
            return health?.status == 200
        }
        let console = try await RawHTTP.send(.GET, "http://127.0.0.1:\(port)/console/")
        #expect(console.status == 503, "\(console.status)")
        #expect(console.problem?.detail.contains("no console assets") == true, "\(String(decoding: console.body, as: UTF8.self))")
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(text.contains("the web console is missing"), "\(text)")
    }
}
