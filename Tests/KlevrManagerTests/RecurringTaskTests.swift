import Foundation
import HTTPTypes
import KlevrAPI
import KlevrClient
import KlevrCore
@testable import KlevrManager
import KlevrStore
import Testing

/// Recurring tasks through the API, with the scheduler's passes taken by hand at chosen instants (the
/// manager's own scheduler off: on the real clock it could fire an occurrence before a pass of the test).
@Suite struct RecurringTaskTests {
    static let minute: Int64 = 60_000

    static func runs(_ store: Store, task: String) async throws -> [RunRecord] {
        try await store.runs(RunFilter(taskID: task), after: nil, limit: 1_000)
    }

    static func events(_ store: Store, _ kind: EventKind, task: String) async throws -> [EventRecord] {
        var filter = EventFilter()
        filter.kinds = [kind]
        filter.subject = task
        return try await store.events(filter, limit: 100)
    }

    @Test func aRecurringTaskFiresOnScheduleSkipsOnOverlapAndStopsAtUntil() async throws {
        let harness = try await TestManager.make(runsScheduler: false)
        let scheduler = RunScheduler(manager: harness.manager)
        let store = harness.manager.store
        try await harness.test { client in
            let admin = try await client.token()
            let key = try await client.zoneWithKey("zone-a", admin: admin).key
            let agent = try await client.enroll(zone: "zone-a", key: key)
            let api = try client.api(token: admin)
            let now = Clock.nowMillis()
            let until = (now / (5 * Self.minute) + 3) * 5 * Self.minute
            let skipping = try await api.createTask(
                body: .json(
                    .init(
                        zone: "zone-a", target: .agent(agent.agentId), steps: [.init(script: "sleep 1")],
                        schedule: .init(cron: "*/5 * * * *", timeZone: "Europe/Berlin", until: until, overlap: .skip)))
            ).created.body.json
            // Nothing runs at creation; the next occurrences are shown.
            #expect(skipping.runs.isEmpty)
            let schedule = try #require(skipping.schedule)
            let first = try #require(schedule.nextFireTimes.first)
            #expect(first > now && first % (5 * Self.minute) == 0)
            #expect(schedule.nextFireTimes.count == 3, "\(schedule.nextFireTimes)")  // until cuts the list
            #expect(zip(schedule.nextFireTimes, schedule.nextFireTimes.dropFirst()).allSatisfy { $1 - $0 == 5 * Self.minute })

            try await scheduler.pass(now: first - 1)
            #expect(try await Self.runs(store, task: skipping.id).isEmpty)
            try await scheduler.pass(now: first)
            var runs = try await Self.runs(store, task: skipping.id)
            #expect(runs.count == 1)
            #expect(runs.first?.occurrence == first)
            #expect(runs.first?.status == .queued)
            // Another pass at the same instant (a second manager, a restart) fires nothing twice.
            try await scheduler.pass(now: first)
            #expect(try await Self.runs(store, task: skipping.id).count == 1)

            // Its run has not ended at the next occurrence: skipped, and said so.
            try await scheduler.pass(now: first + 5 * Self.minute)
            #expect(try await Self.runs(store, task: skipping.id).count == 1)
            let skipped = try await Self.events(store, .taskSkipped, task: skipping.id)
            #expect(skipped.count == 1)
            #expect(skipped.first?.detail["reason"]?.contains("overlap") == true, "\(skipped.first?.detail ?? [:])")

            // Once the run ended, the next occurrence fires; after `until` nothing does.
            let runID = try #require(runs.first?.id)
            _ = try await api.cancelRun(path: .init(id: runID)).ok.body.json
            try await scheduler.pass(now: first + 10 * Self.minute)
            runs = try await Self.runs(store, task: skipping.id)
            #expect(runs.count == 2)
            #expect(runs.contains { $0.occurrence == first + 10 * Self.minute })
            try await scheduler.pass(now: until + 60 * Self.minute)
            #expect(try await Self.runs(store, task: skipping.id).count == 2)
            let finished = try await api.getTask(path: .init(id: skipping.id)).ok.body.json
            #expect(finished.schedule?.nextFireTimes == [])
            #expect(finished.schedule?.firedCount == 2)
        }
    }

    @Test func queueOverlapMaxOccurrencesPauseAndResume() async throws {
        let harness = try await TestManager.make(runsScheduler: false)
        let scheduler = RunScheduler(manager: harness.manager)
        let store = harness.manager.store
        try await harness.test { client in
            let admin = try await client.token()
            let key = try await client.zoneWithKey("zone-a", admin: admin).key
            _ = try await client.enroll(zone: "zone-a", key: key)
            _ = try await client.enroll(zone: "zone-a", key: key)
            let api = try client.api(token: admin)
            let task = try await api.createTask(
                body: .json(
                    .init(
                        zone: "zone-a", target: .everyAgent, steps: [.init(script: "true")],
                        schedule: .init(cron: "0 * * * *", maxOccurrences: 2, overlap: .queue)))
            ).created.body.json
            let first = try #require(task.schedule?.nextFireTimes.first)
            #expect(task.schedule?.nextFireTimes.count == 2)
            try await scheduler.pass(now: first)
            #expect(try await Self.runs(store, task: task.id).count == 2)  // one per agent

            // Paused: the next occurrence does not fire, and none is shown.
            let paused = try await api.pauseTask(path: .init(id: task.id)).ok.body.json
            #expect(paused.schedule?.paused == true)
            #expect(paused.schedule?.nextFireTimes == [])
            try await scheduler.pass(now: first + 60 * Self.minute)
            #expect(try await Self.runs(store, task: task.id).count == 2)
            if case .conflict = try await api.pauseTask(path: .init(id: task.id)) {} else { Issue.record("pausing twice must be a 409") }

            // Resumed: from now, so the pause's occurrences do not fire; with queue, runs still active do not hold it back.
            let resumed = try await api.resumeTask(path: .init(id: task.id)).ok.body.json
            #expect(resumed.schedule?.paused == false)
            let next = try #require(resumed.schedule?.nextFireTimes.first)
            try await scheduler.pass(now: next)
            #expect(try await Self.runs(store, task: task.id).count == 4)
            // maxOccurrences reached.
            try await scheduler.pass(now: next + 120 * Self.minute)
            #expect(try await Self.runs(store, task: task.id).count == 4)
            #expect(try await api.getTask(path: .init(id: task.id)).ok.body.json.schedule?.firedCount == 2)
        }
    }

    @Test func aBadScheduleIsA422NamingTheFieldAndPositionAndStoresNothing() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            _ = try await client.zoneWithKey("zone-a", admin: admin)
            let cases: [(schedule: String, field: String, text: String)] = [
                (#"{"cron": "*/5 * * * FRX"}"#, "schedule.cron", "position"),
                (#"{"cron": "* * *"}"#, "schedule.cron", "position"),
                (#"{"cron": "0 3 * * *", "timeZone": "Mars/Olympus"}"#, "schedule.timeZone", "time zone"),
                (#"{"cron": "0 3 * * *", "maxOccurrences": 0}"#, "schedule.maxOccurrences", "at least 1"),
                (#"{"cron": "0 3 * * *", "overlap": "sometimes"}"#, "schedule.overlap", "invalid"),
            ]
            for (schedule, field, text) in cases {
                let json = #"{"zone": "zone-a", "target": {"kind": "all"}, "steps": [{"script": "true"}], "schedule": "# + schedule + "}"
                let answer = try await client.call(.post, "/api/v1/tasks", token: admin, json: json)
                #expect(answer.status == .unprocessableContent, "\(schedule): \(answer.body)")
                #expect(answer.body.contains(field) && answer.body.contains(text), "\(schedule): \(answer.body)")
            }
            let both = #"{"zone": "zone-a", "target": {"kind": "all"}, "steps": [{"script": "true"}], "runAt": 1, "schedule": {"cron": "0 3 * * *"}}"#
            #expect(try await client.call(.post, "/api/v1/tasks", token: admin, json: both).status == .unprocessableContent)
            #expect(try await client.api(token: admin).listTasks().ok.body.json.items.isEmpty)
        }
    }
}
