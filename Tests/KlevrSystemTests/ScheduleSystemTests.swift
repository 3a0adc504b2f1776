import Foundation
import KlevrAPI
import KlevrClient
import KlevrCore
import KlevrTestSupport
import Testing

/// Schedules and delivery deadlines with a real manager and real agent processes.
/// (Ten minutes: the overlap test alone may wait for two minute boundaries, a restart and its runs.)
@Suite(.serialized, .timeLimit(.minutes(10)), .waitsForProcesses)
struct ScheduleSystemTests {
    /// Milliseconds since the epoch, on this machine (the manager runs here too).
    static func nowMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// The next whole minute at least 20 s ahead (waiting for the current one to pass when it is closer):
    /// the task must be created before its first occurrence, and creating it may take seconds on a
    /// loaded machine.
    static func nextMinuteWellAhead() async throws -> Int64 {
        var now = nowMillis()
        if (now / 60_000 + 1) * 60_000 - now < 20_000 {
            try await Task.sleep(for: .milliseconds((now / 60_000 + 1) * 60_000 - now + 100))
            now = nowMillis()
        }
        return (now / 60_000 + 1) * 60_000
    }

    @Test func aRunAtTaskStartsAtItsTimeAndOnceAcrossAManagerRestart() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "z")
        let agent = try await cluster.startAgent("a", zone: "z")

        // Far enough ahead that the manager's restart (slow on a loaded machine) comes before it.
        let runAt = Self.nowMillis() + 90_000
        let task = try await cluster.createTask(
            .init(zone: "z", target: .agent(agent), steps: [.init(script: "echo on-time")], runAt: runAt))
        let runID = try #require(task.runs.first?.id)
        #expect(task.runAt == runAt)
        #expect(try await cluster.run(runID).status == .scheduled)
        #expect(try await cluster.run(runID).dueAt == runAt)

        // The manager restarts while the run waits: the schedule is in the database, not in memory.
        await cluster.manager?.stop()
        try await cluster.startManager()
        // Still waiting, unless the restart took so long that its time came (then the checks below still
        // hold: it ran once, not before its time).
        let status = try await cluster.run(runID).status
        if Self.nowMillis() < runAt - 10_000 {
            #expect(status == .scheduled)
        }

        try await eventually(150, "the scheduled run ran") { (try? await cluster.run(runID).status) == .succeeded }
        let run = try await cluster.run(runID)
        // Handed out no earlier than its time (the manager's clock decides).
        #expect((run.dispatchedAt ?? 0) >= runAt, "dispatched at \(run.dispatchedAt ?? 0), due at \(runAt)")
        #expect(try await cluster.output(runID).contains("on-time"))
        // Exactly one occurrence: due once, started once.
        #expect(try await cluster.events(kind: "run.due", subject: runID).count == 1)
        #expect(try await cluster.events(kind: "run.started", subject: runID).count == 1)
    }

    @Test func aRunWhoseDeadlinePassesWhileItsAgentIsDownExpiresAndNeverRuns() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "z")
        let agent = try await cluster.startAgent("a", zone: "z")
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("klevr-expired-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: marker) }

        await cluster.agents["a"]?.stop()
        let task = try await cluster.createTask(
            .init(zone: "z", target: .agent(agent), steps: [.init(script: "touch '\(marker)'")], deliverWithinSeconds: 3))
        let runID = try #require(task.runs.first?.id)
        let deliverBy = try #require(try await cluster.run(runID).deliverBy)
        try await eventually(30, "the run expired") { (try? await cluster.run(runID).status) == .expired }
        #expect(Self.nowMillis() >= deliverBy)
        #expect(try await cluster.run(runID).reason?.contains("deadline") == true)

        // The agent returns: it syncs again, and the run stays expired and never runs.
        try await cluster.startAgent("a", zone: "z")
        try await eventually(30, "the agent is online again") { (try? await cluster.agent(agent).status) == .online }
        let seen = try await cluster.agent(agent).lastSeenAt ?? 0
        try await eventually(30, "the agent synced again") { ((try? await cluster.agent(agent).lastSeenAt) ?? 0) > seen }
        let run = try await cluster.run(runID)
        #expect(run.status == .expired)
        #expect(run.startedAt == nil)
        // A poll the stopped agent left held may have taken it before the deadline (the manager cannot see
        // that the client is gone until it answers); past the deadline it is handed to nobody.
        #expect((run.dispatchedAt ?? 0) <= deliverBy, "handed out at \(run.dispatchedAt ?? 0), after its deadline \(deliverBy)")
        #expect(!FileManager.default.fileExists(atPath: marker), "the expired run ran")
        #expect(try await cluster.events(kind: "run.expired", subject: runID).count == 1)
    }

    @Test func theCLISchedulesPausesAndResumesAndRunsLater() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "z")
        let agent = try await cluster.startAgent("a", zone: "z")

        let created = try await cluster.runCLI([
            "task", "run", "--zone", "z", "--agent", agent, "--cron", "*/5 * * * *", "--tz", "Europe/Berlin", "--max-occurrences", "3", "--",
            "echo hi",
        ])
        #expect(created.status == 0, "\(created.output)")
        #expect(created.output.contains("cron '*/5 * * * *' in Europe/Berlin") && created.output.contains("next:"), "\(created.output)")
        let taskID = try #require(created.output.split(separator: " ").dropFirst().first.map(String.init))
        let paused = try await cluster.runCLI(["task", "pause", taskID])
        #expect(paused.status == 0 && paused.output.contains("paused"), "\(paused.output)")
        #expect(try await cluster.runCLI(["task", "show", taskID]).output.contains("; paused"))
        let resumed = try await cluster.runCLI(["task", "resume", taskID])
        #expect(resumed.status == 0 && resumed.output.contains("next:"), "\(resumed.output)")

        // A bad expression is refused with the field and the position; nothing is created.
        let bad = try await cluster.runCLI(["task", "run", "--zone", "z", "--agent", agent, "--cron", "*/5 * * * FRX", "--", "true"])
        #expect(bad.status != 0 && bad.output.contains("schedule.cron") && bad.output.contains("position"), "\(bad.output)")
        let unreadable = try await cluster.runCLI(["task", "run", "--zone", "z", "--agent", agent, "--at", "tomorrow", "--", "true"])
        #expect(unreadable.status != 0 && unreadable.output.contains("--at"), "\(unreadable.output)")
        #expect(try await cluster.api.listTasks().ok.body.json.items.count == 1)

        // --at waits for the time, then follows the run.
        let started = Self.nowMillis()
        let later = try await cluster.runCLI(["task", "run", "--zone", "z", "--agent", agent, "--at", "+3s", "--", "echo later"])
        #expect(later.status == 0 && later.output.contains("later"), "\(later.output)")
        #expect(Self.nowMillis() - started >= 3_000)
    }

    @Test func aCronTaskRunsOnTheMinuteOnARealAgentAndStopsAtUntil() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "z")
        let agent = try await cluster.startAgent("a", zone: "z")
        // Every minute, until half a minute after the next one: exactly one occurrence.
        let nextMinute = try await Self.nextMinuteWellAhead()
        let task = try await cluster.createTask(
            .init(
                zone: "z", target: .agent(agent), steps: [.init(script: "echo tick")],
                schedule: .init(cron: "* * * * *", until: nextMinute + 30_000)))
        #expect(task.schedule?.nextFireTimes == [nextMinute], "created at \(task.createdAt)")
        var runs: [Components.Schemas.Run] = []
        try await eventually(120, "the occurrence ran") {
            runs = try await cluster.api.getTask(path: .init(id: task.id)).ok.body.json.runs
            return runs.first?.status == .succeeded
        }
        let run = try #require(runs.first)
        #expect(runs.count == 1)
        #expect(run.occurrence == nextMinute)
        #expect((run.dispatchedAt ?? 0) >= nextMinute, "dispatched at \(run.dispatchedAt ?? 0), occurrence \(nextMinute)")
        #expect(try await cluster.output(run.id) == "tick\n")
        let finished = try await cluster.api.getTask(path: .init(id: task.id)).ok.body.json
        #expect(finished.schedule?.nextFireTimes == [])
        #expect(finished.schedule?.firedCount == 1)
    }

    @Test func anOccurrenceWhileTheLastRunStillRunsIsSkippedOnceAcrossAManagerRestart() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "z")
        let agent = try await cluster.startAgent("a", zone: "z")
        // Two occurrences a minute apart; the first run outlasts the second occurrence (overlap: skip).
        let first = try await Self.nextMinuteWellAhead()
        let second = first + 60_000
        let gate = cluster.directory + "/long-run-may-end"
        let task = try await cluster.createTask(
            .init(
                zone: "z", target: .agent(agent), steps: [.init(script: "while [ ! -e '\(gate)' ]; do sleep 0.2; done; echo done")],
                schedule: .init(cron: "* * * * *", until: second + 20_000, overlap: .skip)))
        #expect(task.schedule?.nextFireTimes == [first, second])
        try await eventually(120, "the first occurrence runs") {
            (try? await cluster.api.getTask(path: .init(id: task.id)).ok.body.json.runs.first?.status) == .running
        }
        // The manager restarts between the two occurrences (or across the second one, on a slow machine).
        await cluster.manager?.stop()
        try await cluster.startManager()
        try await eventually(120, "the second occurrence is dealt with") {
            ((try? await cluster.api.getTask(path: .init(id: task.id)).ok.body.json.schedule?.nextFireTimes) ?? [0]).isEmpty
        }
        FileManager.default.createFile(atPath: gate, contents: Data())
        var runs: [Components.Schemas.Run] = []
        try await eventually(60, "the first run ends") {
            runs = try await cluster.api.getTask(path: .init(id: task.id)).ok.body.json.runs
            return runs.first?.status == .succeeded
        }
        // One run (the first occurrence); the second skipped once, saying why.
        #expect(runs.count == 1)
        #expect(runs.first?.occurrence == first)
        let skipped = try await cluster.events(kind: "task.skipped", subject: task.id)
        #expect(skipped.count == 1)
        // Overlap, as a rule; "missed" when the restart took the manager's pass more than a minute past the
        // second occurrence (catch-up then counts it missed). Either way it did not run, once.
        let reason = skipped.first?.detail.additionalProperties["reason"] ?? ""
        #expect(reason.contains("overlap") || reason.contains("missed"), "\(skipped.first?.detail.additionalProperties ?? [:])")
        #expect(try await cluster.events(kind: "task.fired", subject: task.id).count == 1)
    }
}
