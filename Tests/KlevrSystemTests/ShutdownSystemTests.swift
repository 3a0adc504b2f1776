import Foundation
import KlevrAPI
import KlevrClient
import KlevrTestSupport
import Testing

/// A manager asked to stop (SIGTERM, as systemd and `klevr up` do) stops, whoever follows it live.
@Suite(.serialized, .timeLimit(.minutes(5)))
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
        defer { events.stop() }
        let logs = try KlevrProcess(["run", "logs", "-f", runID], environment: cluster.cliEnvironment, logPath: cluster.directory + "/logs-follow.log")
        defer { logs.stop() }
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
