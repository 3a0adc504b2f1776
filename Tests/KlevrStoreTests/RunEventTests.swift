import Foundation
import KlevrCore
import KlevrStore
import Testing

/// Every path that changes a run goes through the run door and appends exactly one typed event, in the
/// same transaction: on SQLite and PostgreSQL.
@Suite struct RunEventTests {
    static let now: Int64 = 1_800_000_000_000
    static let operatorActor = EventActor(kind: .user, id: "u1", name: "ann", address: "127.0.0.1")

    /// The events about one subject, oldest first.
    static func events(_ store: Store, subject: String) async throws -> [EventRecord] {
        var filter = EventFilter()
        filter.subject = subject
        return try await store.events(filter, after: 0, limit: 500)
    }

    /// How many events of `kind` name `subject`.
    static func count(_ store: Store, _ kind: EventKind, _ subject: String) async throws -> Int {
        try await events(store, subject: subject).filter { $0.kind == kind }.count
    }

    static func status(_ store: Store, _ run: String) async throws -> RunStatus? {
        try await store.run(id: run)?.status
    }

    @Test(arguments: Engine.available)
    func everyRunChangeAppendsExactlyOneEvent(engine: Engine) async throws {
        try await withStore(engine) { store in
            let fixture = try await StoreConformanceTests.fixture(store)
            let (a, b) = (fixture.agents[0], fixture.agents[1])
            let runA = try #require(try await store.runs(RunFilter(taskID: fixture.task.id, agentID: a), after: nil, limit: 10).first).id
            let runB = try #require(try await store.runs(RunFilter(taskID: fixture.task.id, agentID: b), after: nil, limit: 10).first).id

            // create: one run.created per run, one task.created.
            #expect(try await Self.count(store, .runCreated, runA) == 1)
            #expect(try await Self.count(store, .runCreated, runB) == 1)
            #expect(try await Self.count(store, .taskCreated, fixture.task.id) == 1)

            // dispatch, then redeliver after the redelivery delay; the first dispatch time is kept.
            _ = try await store.takeWork(agentID: a, now: Self.now + 10, redeliverAfter: 1_000)
            #expect(try await Self.status(store, runA) == .dispatched)
            #expect(try await Self.count(store, .runDispatched, runA) == 1)
            let nothing = try await store.takeWork(agentID: a, now: Self.now + 20, redeliverAfter: 1_000)
            #expect(nothing.runs.isEmpty)
            #expect(try await Self.count(store, .runRedelivered, runA) == 0)
            _ = try await store.takeWork(agentID: a, now: Self.now + 2_000, redeliverAfter: 1_000)
            #expect(try await Self.count(store, .runRedelivered, runA) == 1)
            #expect(try await store.run(id: runA)?.dispatchedAt == Self.now + 10)

            // start, and a repeated start report changes and records nothing.
            _ = try await store.applyReport(agentID: a, started: [ReportedStart(runID: runA, at: Self.now + 2_100)], logs: [], results: [], now: Self.now + 2_100)
            _ = try await store.applyReport(agentID: a, started: [ReportedStart(runID: runA, at: Self.now + 2_100)], logs: [], results: [], now: Self.now + 2_200)
            #expect(try await Self.status(store, runA) == .running)
            #expect(try await Self.count(store, .runStarted, runA) == 1)

            // cancel running: ordered, recorded once; the agent's report ends it (one run.canceled).
            let ordered = try await store.cancelRun(id: runA, now: Self.now + 2_300, actor: Self.operatorActor)
            #expect(ordered.status == .running && ordered.cancelRequested)
            #expect(try await Self.count(store, .runCancelRequested, runA) == 1)
            let requested = try #require(try await Self.events(store, subject: runA).last)
            #expect(requested.actor == Self.operatorActor)
            _ = try await store.applyReport(
                agentID: a, started: [], logs: [],
                results: [ReportedResult(runID: runA, outcome: .canceled, exitCode: nil, reason: "canceled", result: nil, finishedAt: Self.now + 2_400)],
                now: Self.now + 2_400)
            #expect(try await Self.count(store, .runCanceled, runA) == 1)
            #expect(try await Self.events(store, subject: runA).last?.actor.kind == .agent)

            // cancel queued: ends at once, one event.
            #expect(try await Self.status(store, runB) == .queued)
            _ = try await store.cancelRun(id: runB, now: Self.now + 2_500, actor: Self.operatorActor)
            #expect(try await Self.status(store, runB) == .canceled)
            #expect(try await Self.count(store, .runCanceled, runB) == 1)

            // A refused transition is an error that is recorded, and changes nothing.
            await #expect(throws: StoreError.self) { _ = try await store.cancelRun(id: runB, now: Self.now + 2_600, actor: Self.operatorActor) }
            #expect(try await Self.count(store, .runTransitionRefused, runB) == 1)
            let conflicting = try await store.applyReport(
                agentID: a, started: [], logs: [],
                results: [ReportedResult(runID: runA, outcome: .succeeded, exitCode: 0, reason: nil, result: nil, finishedAt: Self.now + 2_700)],
                now: Self.now + 2_700)
            #expect(conflicting.rejected[runA] != nil)
            #expect(try await Self.status(store, runA) == .canceled)
            #expect(try await Self.count(store, .runTransitionRefused, runA) == 1)
        }
    }

    @Test(arguments: Engine.available)
    func resultsAndTimeoutsAppendTheirEvents(engine: Engine) async throws {
        try await withStore(engine) { store in
            let fixture = try await StoreConformanceTests.fixture(store)
            let (a, b) = (fixture.agents[0], fixture.agents[1])
            _ = try await store.takeWork(agentIDs: [a, b], now: Self.now + 10, redeliverAfter: 1_000)
            let runs = try await store.runs(RunFilter(taskID: fixture.task.id), after: nil, limit: 10)
            let runA = try #require(runs.first { $0.agentID == a }).id
            let runB = try #require(runs.first { $0.agentID == b }).id
            // A result without a start report (lost) still moves the run once.
            _ = try await store.applyReport(
                agentID: a, started: [], logs: [],
                results: [ReportedResult(runID: runA, outcome: .succeeded, exitCode: 0, reason: nil, result: "{}", finishedAt: Self.now + 20)],
                now: Self.now + 20)
            _ = try await store.applyReport(
                agentID: b, started: [ReportedStart(runID: runB, at: Self.now + 15)], logs: [],
                results: [ReportedResult(runID: runB, outcome: .timedOut, exitCode: nil, reason: "timed out after 60 s", result: nil, finishedAt: Self.now + 30)],
                now: Self.now + 30)
            #expect(try await Self.count(store, .runSucceeded, runA) == 1)
            #expect(try await Self.count(store, .runStarted, runB) == 1)
            #expect(try await Self.count(store, .runTimedOut, runB) == 1)
            let timedOut = try #require(try await Self.events(store, subject: runB).last)
            #expect(timedOut.detail["reason"] == "timed out after 60 s")
            #expect(timedOut.detail["from"] == "running")
        }
    }

    @Test(arguments: Engine.available)
    func aLeaseMoveReleasesHandedRunsWithoutTouchingTheirDispatchTime(engine: Engine) async throws {
        try await withStore(engine) { store in
            let fixture = try await StoreConformanceTests.fixture(store)
            let (a, b) = (fixture.agents[0], fixture.agents[1])
            let zone = fixture.zone.id
            _ = try await store.acquireLease(zoneID: zone, agentID: a, now: Self.now, duration: 3_000)
            let handed = try await store.takeWork(agentIDs: [a, b], zoneID: zone, now: Self.now + 10, redeliverAfter: 60_000)
            #expect(handed.runs.count == 2)
            // The lease expires and b takes over: both handed runs are due again at once, once each.
            _ = try await store.acquireLease(zoneID: zone, agentID: b, now: Self.now + 5_000, duration: 3_000)
            for run in fixture.runs {
                #expect(try await Self.count(store, .runReleased, run) == 1)
                #expect(try await store.run(id: run)?.dispatchedAt == Self.now + 10)
            }
            let again = try await store.takeWork(agentIDs: [a, b], zoneID: zone, now: Self.now + 5_010, redeliverAfter: 60_000)
            #expect(Set(again.runs.map(\.run.id)) == Set(fixture.runs))
            for run in fixture.runs { #expect(try await Self.count(store, .runRedelivered, run) == 1) }
            var filter = EventFilter()
            filter.zone = zone
            filter.kinds = [.primaryElected, .primaryRetired]
            let primaries = try await store.events(filter, after: 0, limit: 10)
            #expect(primaries.map(\.kind) == [.primaryElected, .primaryRetired, .primaryElected])
            #expect(primaries.last?.detail["epoch"] == "2" && primaries.last?.subject == b)
        }
    }

    @Test(arguments: Engine.available)
    func retiringAnAgentStopsItsRunsBeforeItsCredentialDies(engine: Engine) async throws {
        try await withStore(engine) { store in
            let fixture = try await StoreConformanceTests.fixture(store)
            let (a, b) = (fixture.agents[0], fixture.agents[1])
            _ = try await store.takeWork(agentID: a, now: Self.now + 10, redeliverAfter: 1_000)
            let runA = try #require(fixture.runs.first { _ in true })
            let running = try #require(try await store.runs(RunFilter(agentID: a), after: nil, limit: 1).first).id
            _ = try await store.applyReport(agentID: a, started: [ReportedStart(runID: running, at: Self.now + 20)], logs: [], results: [], now: Self.now + 20)
            _ = runA
            // a holds a running run: it is told to stop it and stays able to report until it did.
            let retiredAtOnce = try await store.retireAgent(id: a, now: Self.now + 30, actor: Self.operatorActor)
            #expect(!retiredAtOnce)
            #expect(try await store.agent(credentialHash: Secrets.hash("cred0")) != nil)
            #expect(try await Self.count(store, .agentRetireRequested, a) == 1)
            #expect(try await Self.count(store, .runCancelRequested, running) == 1)
            let work = try await store.takeWork(agentID: a, now: Self.now + 40, redeliverAfter: 1_000)
            #expect(work.cancels == [running])
            _ = try await store.applyReport(
                agentID: a, started: [], logs: [],
                results: [ReportedResult(runID: running, outcome: .canceled, exitCode: nil, reason: "canceled", result: nil, finishedAt: Self.now + 50)],
                now: Self.now + 50)
            #expect(try await Self.count(store, .runCanceled, running) == 1)
            #expect(try await Self.count(store, .agentRetired, a) == 1)
            #expect(try await store.agent(credentialHash: Secrets.hash("cred0")) == nil)

            // b holds only a queued run: it ends at once and b is retired at once.
            let queued = try #require(try await store.runs(RunFilter(agentID: b), after: nil, limit: 1).first).id
            #expect(try await store.retireAgent(id: b, now: Self.now + 60, actor: Self.operatorActor))
            #expect(try await Self.status(store, queued) == .canceled)
            #expect(try await Self.count(store, .runCanceled, queued) == 1)
            #expect(try await Self.count(store, .agentRetired, b) == 1)
        }
    }

    @Test(arguments: Engine.available)
    func anAgentThatNeverConfirmsIsRetiredAfterTheGrace(engine: Engine) async throws {
        try await withStore(engine) { store in
            let fixture = try await StoreConformanceTests.fixture(store)
            let a = fixture.agents[0]
            _ = try await store.takeWork(agentID: a, now: Self.now + 10, redeliverAfter: 1_000)
            let run = try #require(try await store.runs(RunFilter(agentID: a), after: nil, limit: 1).first).id
            _ = try await store.retireAgent(id: a, now: Self.now + 20, actor: Self.operatorActor)
            #expect(try await store.finishOverdueRetirements(requestedBefore: Self.now + 20, now: Self.now + 30).isEmpty)
            let retired = try await store.finishOverdueRetirements(requestedBefore: Self.now + 21, now: Self.now + 90_000)
            #expect(retired.map(\.id) == [a])
            #expect(try await Self.status(store, run) == .canceled)
            #expect(try await store.run(id: run)?.reason?.contains("did not confirm") == true)
            #expect(try await Self.count(store, .runCanceled, run) == 1)
            #expect(try await Self.count(store, .agentRetired, a) == 1)
        }
    }

    @Test(arguments: Engine.available)
    func aFaultBetweenTheStatusWriteAndTheEventWriteLeavesNeither(engine: Engine) async throws {
        struct Injected: Error {}
        try await withStore(engine) { store in
            let fixture = try await StoreConformanceTests.fixture(store)
            let run = fixture.runs[0]
            let before = try await Self.events(store, subject: run).count
            store.hooks.setBeforeEventWrite { throw Injected() }
            await #expect(throws: Injected.self) { _ = try await store.cancelRun(id: run, now: Self.now + 10, actor: Self.operatorActor) }
            await #expect(throws: Injected.self) { _ = try await store.takeWork(agentIDs: fixture.agents, now: Self.now + 10, redeliverAfter: 1_000) }
            await #expect(throws: Injected.self) { try await store.retireAgent(id: fixture.agents[0], now: Self.now + 10, actor: Self.operatorActor) }
            store.hooks.setBeforeEventWrite(nil)
            #expect(try await Self.status(store, run) == .queued)
            #expect(try await store.run(id: run)?.dispatchedAt == nil)
            #expect(try await Self.events(store, subject: run).count == before)
            #expect(try await store.agent(id: fixture.agents[0])?.retireRequestedAt == nil)
            // And without the fault the same change lands with its event.
            _ = try await store.cancelRun(id: run, now: Self.now + 20, actor: Self.operatorActor)
            #expect(try await Self.count(store, .runCanceled, run) == 1)
        }
    }

    @Test(arguments: Engine.available)
    func eventIdsIncreaseAndFiltersSelect(engine: Engine) async throws {
        try await withStore(engine) { store in
            let fixture = try await StoreConformanceTests.fixture(store)
            let all = try await store.events(EventFilter(), after: 0, limit: 500)
            #expect(all.map(\.id) == Array(1...Int64(all.count)))
            var byKind = EventFilter()
            byKind.kinds = [.runCreated]
            #expect(try await store.events(byKind, after: 0, limit: 500).count == fixture.runs.count)
            var byZone = EventFilter()
            byZone.zone = "z1"
            #expect(try await store.events(byZone, after: 0, limit: 500).count == all.filter { $0.zoneID == fixture.zone.id }.count)
            // Newest first with a cursor walks every event once.
            var seen: [Int64] = []
            var cursor: Int64?
            repeat {
                let page = try await store.events(EventFilter(), before: cursor, limit: 2)
                seen += page.map(\.id)
                cursor = page.count == 2 ? page.last?.id : nil
            } while cursor != nil
            #expect(seen == all.map(\.id).reversed())
        }
    }
}
