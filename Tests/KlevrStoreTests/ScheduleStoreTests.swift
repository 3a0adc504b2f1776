import Foundation
import KlevrCore
import KlevrStore
import SQLKit
import Testing

/// Scheduled runs become due once, and runs past their delivery deadline expire unless they started;
/// the same on SQLite and PostgreSQL, with the clock given by the test.
@Suite struct ScheduleStoreTests {
    static let now = StoreConformanceTests.now

    static func task(_ zone: ZoneRecord, runAt: Int64? = nil, deliverWithin: Int? = nil) -> TaskRecord {
        TaskRecord(
            id: Secrets.newID(), name: "t", zoneID: zone.id, zoneName: zone.name, targetJSON: #"{"kind":"all"}"#,
            stepsJSON: #"[{"script":"echo hi"}]"#, paramsJSON: "{}", timeoutSeconds: 60, createdAt: now, createdBy: "admin", canceledAt: nil,
            runAt: runAt, deliverWithinSeconds: deliverWithin)
    }

    @Test(arguments: Engine.available)
    func aScheduledRunIsQueuedOnceWhenDue(engine: Engine) async throws {
        try await withStore(engine) { store in
            let fixture = try await StoreConformanceTests.fixture(store)
            let runs = try await store.createTask(Self.task(fixture.zone, runAt: Self.now + 10_000), agentIDs: fixture.agents, actor: .system)
            for id in runs {
                let run = try #require(try await store.run(id: id))
                #expect(run.status == .scheduled)
                #expect(run.dueAt == Self.now + 10_000)
            }
            // Nobody receives a scheduled run.
            let early = try await store.takeWork(agentIDs: fixture.agents, now: Self.now + 5_000, redeliverAfter: 10_000)
            #expect(!early.runs.contains { runs.contains($0.run.id) })
            #expect(try await store.queueDueRuns(now: Self.now + 9_999).isEmpty)
            let due = try await store.queueDueRuns(now: Self.now + 10_000)
            #expect(Set(due.map(\.id)) == Set(runs))
            // A second pass (another manager, or a restart) queues nothing twice.
            #expect(try await store.queueDueRuns(now: Self.now + 10_000).isEmpty)
            for id in runs { #expect(try await store.run(id: id)?.status == .queued) }
            var filter = EventFilter()
            filter.kinds = [.runDue]
            #expect(try await store.events(filter, limit: 100).count == runs.count)
        }
    }

    /// The scheduler sleeps until this moment: the earliest due time, deadline (plus the grace of a
    /// dispatched run) or occurrence; nothing waiting is nil.
    @Test(arguments: Engine.available)
    func theNextSchedulerMomentIsTheEarliestThingDue(engine: Engine) async throws {
        try await withStore(engine) { store in
            let fixture = try await StoreConformanceTests.fixture(store)
            let grace: Int64 = 5_000
            #expect(try await store.nextSchedulerMoment(grace: grace) == nil)
            _ = try await store.createTask(Self.task(fixture.zone, runAt: Self.now + 60_000), agentIDs: [fixture.agents[0]], actor: .system)
            #expect(try await store.nextSchedulerMoment(grace: grace) == Self.now + 60_000)
            // A queued run with a deadline: due one millisecond after it passes.
            let deadlined = try await store.createTask(
                Self.task(fixture.zone, deliverWithin: 30), agentIDs: [fixture.agents[1]], actor: .system)
            #expect(try await store.nextSchedulerMoment(grace: grace) == Self.now + 30_001)
            // Handed out, it is given the grace past its deadline.
            let handed = try await store.takeWork(agentIDs: [fixture.agents[1]], now: Self.now + 1_000, redeliverAfter: 60_000).runs
            #expect(handed.contains { deadlined.contains($0.run.id) })
            #expect(try await store.nextSchedulerMoment(grace: grace) == Self.now + 30_000 + grace + 1)
            // Once due and queued, the scheduled run no longer counts.
            _ = try await store.queueDueRuns(now: Self.now + 60_000)
            #expect(try await store.nextSchedulerMoment(grace: grace) == Self.now + 30_000 + grace + 1)
        }
    }

    @Test(arguments: Engine.available)
    func runsOfARetiredAgentAreEndedWithTheReason(engine: Engine) async throws {
        try await withStore(engine) { store in
            let fixture = try await StoreConformanceTests.fixture(store)
            let retired = fixture.agents[0]
            // One of its runs is handed out, another waits; the other agent's runs are not touched.
            let later = try await store.createTask(Self.task(fixture.zone, runAt: Self.now + 60_000), agentIDs: [retired], actor: .system)
            let handed = try await store.takeWork(agentIDs: [retired], now: Self.now + 1_000, redeliverAfter: 60_000).runs.map(\.run.id)
            #expect(!handed.isEmpty)
            #expect(try await store.endUndeliverableRuns(now: Self.now + 2_000).isEmpty)
            // Retired as a race would leave it: its runs still open (a run created while the retirement was written).
            try await store.database.transaction { db in
                try await db.raw("UPDATE agents SET retired_at = \(bind: Self.now + 2_000) WHERE id = \(bind: retired)").run()
            }
            let ended = try await store.endUndeliverableRuns(now: Self.now + 3_000)
            #expect(Set(ended.map(\.id)) == Set(handed + later))
            for id in handed + later {
                let run = try #require(try await store.run(id: id))
                #expect(run.status == .canceled)
                #expect(run.reason?.contains("agent was retired") == true)
            }
            let other = try #require(fixture.runs.first { id in !handed.contains(id) })
            #expect(try await store.run(id: other)?.status == .queued)
            // Once ended, nothing is left to end.
            #expect(try await store.endUndeliverableRuns(now: Self.now + 4_000).isEmpty)
        }
    }

    @Test(arguments: Engine.available)
    func aRunPastItsDeadlineExpiresUnlessItStarted(engine: Engine) async throws {
        try await withStore(engine) { store in
            let fixture = try await StoreConformanceTests.fixture(store)
            let runs = try await store.createTask(Self.task(fixture.zone, deliverWithin: 5), agentIDs: fixture.agents, actor: .system)
            let deadline = Self.now + 5_000
            for id in runs { #expect(try await store.run(id: id)?.deliverBy == deadline) }
            // Both are handed out (with the fixture's own task); the first agent starts its run.
            let work = try await store.takeWork(agentIDs: fixture.agents, now: Self.now + 1_000, redeliverAfter: 60_000).runs
                .filter { runs.contains($0.run.id) }
            #expect(Set(work.map(\.run.id)) == Set(runs))
            let started = try #require(work.first { $0.run.agentID == fixture.agents[0] }?.run.id)
            let idle = try #require(work.first { $0.run.agentID == fixture.agents[1] }?.run.id)
            _ = try await store.applyReports(
                [ReportedBatch(agentID: fixture.agents[0], started: [ReportedStart(runID: started, at: Self.now + 2_000)], logs: [], results: [])],
                now: Self.now + 2_000)
            // Past the deadline a dispatched run is given a grace; past the grace it expires. A started one never does.
            #expect(try await store.expireOverdueRuns(now: deadline + 1, grace: 3_000).isEmpty)
            let expired = try await store.expireOverdueRuns(now: deadline + 3_001, grace: 3_000)
            #expect(expired.map(\.id) == [idle])
            #expect(try await store.expireOverdueRuns(now: deadline + 60_000, grace: 3_000).isEmpty)
            let idleRun = try #require(try await store.run(id: idle))
            #expect(idleRun.status == .expired)
            #expect(idleRun.reason?.contains("deadline") == true)
            #expect(try await store.run(id: started)?.status == .running)
            // The agent that did not start it cannot start it now: the report is refused and recorded.
            let late = try await store.applyReports(
                [ReportedBatch(agentID: fixture.agents[1], started: [ReportedStart(runID: idle, at: deadline + 4_000)], logs: [], results: [])],
                now: deadline + 4_000)
            #expect(late.first?.rejected[idle] != nil)
            #expect(try await store.run(id: idle)?.status == .expired)
        }
    }

    @Test(arguments: Engine.available)
    func aQueuedRunPastItsDeadlineIsNeitherHandedOutNorKept(engine: Engine) async throws {
        try await withStore(engine) { store in
            let fixture = try await StoreConformanceTests.fixture(store)
            let runs = try await store.createTask(
                Self.task(fixture.zone, runAt: Self.now + 1_000, deliverWithin: 2), agentIDs: fixture.agents, actor: .system)
            // Its agents were away: the run became due and its deadline passed before anyone polled.
            #expect(try await store.queueDueRuns(now: Self.now + 1_000).count == runs.count)
            let late = try await store.takeWork(agentIDs: fixture.agents, now: Self.now + 3_001, redeliverAfter: 10_000)
            #expect(!late.runs.contains { runs.contains($0.run.id) })
            #expect(try await store.expireOverdueRuns(now: Self.now + 3_001, grace: 60_000).count == runs.count)
            var filter = EventFilter()
            filter.kinds = [.runExpired]
            #expect(try await store.events(filter, limit: 100).count == runs.count)
        }
    }
}
