import Foundation
import KlevrAPI
import KlevrClient
import KlevrTestSupport
import Testing

/// The CLI's live follows (Server-Sent Events through the generated client): `klevr run logs -f` prints
/// a run's output until it ends, `klevr events -f` prints events as they are made.
@Suite(.serialized, .timeLimit(.minutes(5)), .waitsForProcesses)
struct FollowCLISystemTests {
    @Test func runLogsAndEventsAreFollowedLive() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "local")
        let agent = try await cluster.startAgent("a", zone: "local")

        // Only the live stream prints in JSON mode (the listing before it is not printed), one event a line.
        let follower = try KlevrProcess(
            ["events", "-f", "--kind", "run", "--output", "json"], environment: cluster.cliEnvironment,
            logPath: cluster.directory + "/events-follow.log")
        defer { follower.stopInBackground() }

        // The follower may connect after the first task ended; a later task's events then arrive live.
        var followed: String?
        for attempt in 1...5 where followed == nil {
            let task = try await cluster.createTask(
                // Named: an agent that just enrolled may not count as online yet on a loaded machine.
                .init(zone: "local", target: .agent(agent), steps: [.init(script: "echo first-\(attempt); sleep 1; echo second-\(attempt)")]))
            let runID = try #require(task.runs.first).id
            let logs = try await cluster.runCLI(["run", "logs", "-f", String(runID.prefix(8))])
            #expect(logs.status == 0, "\(logs.output)")
            #expect(logs.output.contains("first-\(attempt)\nsecond-\(attempt)\n"), "\(logs.output)")
            #expect(logs.output.contains("run \(runID) ended: succeeded"), "\(logs.output)")
            // Not `eventually`: a first task the follower missed is not a failure.
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                if follower.log.split(separator: "\n").contains(where: { $0.contains(#""kind":"run.succeeded""#) && $0.contains(runID) }) {
                    followed = runID
                    break
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        let runID = try #require(followed, "klevr events -f printed no run's end: \(follower.log)")
        // Every line is one event as JSON, in order of ids, with the run's start before its end.
        let events = try follower.log.split(separator: "\n").map { try JSONDecoder().decode(Components.Schemas.Event.self, from: Data($0.utf8)) }
        #expect(events.map(\.id) == events.map(\.id).sorted())
        let kinds = events.filter { $0.subject == runID }.map(\.kind.rawValue)
        #expect(kinds.firstIndex(of: "run.started") ?? .max < kinds.firstIndex(of: "run.succeeded") ?? -1, "\(kinds)")
        #expect(follower.process.isRunning, "klevr events -f ended by itself: \(follower.log)")
    }
}
