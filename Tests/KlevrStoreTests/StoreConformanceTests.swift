import Foundation
import KlevrCore
import KlevrStore
import Testing

/// The same behaviour on SQLite and PostgreSQL.
@Suite struct StoreConformanceTests {
    static let now: Int64 = 1_800_000_000_000

    /// A zone with two enrolled agents and a task for both.
    static func fixture(_ store: Store) async throws -> (zone: ZoneRecord, agents: [String], runs: [String], task: TaskRecord) {
        let zone = try await store.createZone(name: "z1", description: "test", now: now, actor: .system)
        var agents: [String] = []
        for index in 0..<2 {
            agents.append(
                try await store.enrollAgent(
                    zoneID: zone.id, publicKey: "pk\(index)", credentialHash: Secrets.hash("cred\(index)"), hostname: "h\(index)", os: "linux",
                    version: "1", addresses: ["10.0.0.\(index)"], now: now))
        }
        let task = TaskRecord(
            id: Secrets.newID(), name: "t", zoneID: zone.id, zoneName: zone.name, targetJSON: #"{"kind":"all"}"#,
            stepsJSON: #"[{"script":"echo hi"}]"#, paramsJSON: "{}", timeoutSeconds: 60, createdAt: now, createdBy: "admin", canceledAt: nil)
        let runs = try await store.createTask(task, agentIDs: agents, actor: .system)
        return (zone, agents, runs, task)
    }

    @Test(arguments: Engine.available)
    func migrationsAreIdempotent(engine: Engine) async throws {
        try await withStore(engine) { store in
            try await store.migrate()
            #expect(try await store.userCount() == 0)
        }
    }

    @Test(arguments: Engine.available)
    func usersAreUnique(engine: Engine) async throws {
        try await withStore(engine) { store in
            _ = try await store.createUser(username: "ann", passwordHash: "h", role: .operator_, now: Self.now)
            await #expect(throws: StoreError.conflict("a user named 'ann' already exists")) {
                _ = try await store.createUser(username: "ann", passwordHash: "h2", role: .viewer, now: Self.now)
            }
            #expect(try await store.user(named: "ann")?.role == .operator_)
            #expect(try await store.userCount() == 1)
        }
    }

    @Test(arguments: Engine.available)
    func enrollKeysExpireAndRevoke(engine: Engine) async throws {
        try await withStore(engine) { store in
            _ = try await store.createZone(name: "z1", description: "", now: Self.now, actor: .system)
            let open = try await store.createEnrollKey(zoneName: "z1", keyHash: "h-open", prefix: "kle_a", now: Self.now, expiresAt: nil, actor: .system)
            _ = try await store.createEnrollKey(zoneName: "z1", keyHash: "h-expiring", prefix: "kle_b", now: Self.now, expiresAt: Self.now + 1000, actor: .system)
            #expect(try await store.validEnrollKeyZone(zoneName: "z1", keyHash: "h-open", now: Self.now)?.name == "z1")
            #expect(try await store.validEnrollKeyZone(zoneName: "z1", keyHash: "h-expiring", now: Self.now + 999) != nil)
            #expect(try await store.validEnrollKeyZone(zoneName: "z1", keyHash: "h-expiring", now: Self.now + 1000) == nil)
            #expect(try await store.validEnrollKeyZone(zoneName: "z1", keyHash: "wrong", now: Self.now) == nil)
            #expect(try await store.validEnrollKeyZone(zoneName: "other", keyHash: "h-open", now: Self.now) == nil)
            let rotated = try await store.rotateEnrollKey(zoneName: "z1", id: open.id, newKeyHash: "h-new", prefix: "kle_c", now: Self.now, expiresAt: nil, actor: .system)
            #expect(try await store.validEnrollKeyZone(zoneName: "z1", keyHash: "h-open", now: Self.now) == nil)
            #expect(try await store.validEnrollKeyZone(zoneName: "z1", keyHash: "h-new", now: Self.now) != nil)
            try await store.revokeEnrollKey(zoneName: "z1", id: rotated.id, now: Self.now, actor: .system)
            #expect(try await store.validEnrollKeyZone(zoneName: "z1", keyHash: "h-new", now: Self.now) == nil)
            #expect(try await store.enrollKeys(zoneName: "z1").count == 3)
        }
    }

    @Test(arguments: Engine.available)
    func reEnrollingKeepsTheAgent(engine: Engine) async throws {
        try await withStore(engine) { store in
            let zone = try await store.createZone(name: "z1", description: "", now: Self.now, actor: .system)
            let first = try await store.enrollAgent(
                zoneID: zone.id, publicKey: "pk", proofTime: 10, credentialHash: "c1", hostname: "h", os: "l", version: "1", addresses: [], now: Self.now)
            let second = try await store.enrollAgent(
                zoneID: zone.id, publicKey: "pk", proofTime: 20, credentialHash: "c2", hostname: "h2", os: "l", version: "1", addresses: [], now: Self.now)
            #expect(first == second)
            // A statement no newer than the last one is a replay: refused, nothing changes.
            await #expect(throws: StoreError.self) {
                _ = try await store.enrollAgent(
                    zoneID: zone.id, publicKey: "pk", proofTime: 20, credentialHash: "c3", hostname: "h3", os: "l", version: "1", addresses: [], now: Self.now)
            }
            #expect(try await store.agent(credentialHash: "c3") == nil)
            #expect(try await store.agent(credentialHash: "c1") == nil)
            #expect(try await store.agent(credentialHash: "c2")?.hostname == "h2")
            try await store.retireAgent(id: first, now: Self.now, actor: .system)
            #expect(try await store.agent(credentialHash: "c2") == nil)
        }
    }

    @Test(arguments: Engine.available)
    func dispatchHandsOutOnceThenRedelivers(engine: Engine) async throws {
        try await withStore(engine) { store in
            let fixture = try await Self.fixture(store)
            let agent = fixture.agents[0]
            let first = try await store.takeWork(agentID: agent, now: Self.now, redeliverAfter: 10_000)
            #expect(first.runs.count == 1)
            #expect(first.runs.first?.run.status == .dispatched)
            #expect(first.runs.first?.task.id == fixture.task.id)
            let again = try await store.takeWork(agentID: agent, now: Self.now + 5_000, redeliverAfter: 10_000)
            #expect(again.runs.isEmpty)
            let redelivered = try await store.takeWork(agentID: agent, now: Self.now + 11_000, redeliverAfter: 10_000)
            #expect(redelivered.runs.map(\.run.id) == first.runs.map(\.run.id))
            _ = try await store.applyReport(
                agentID: agent, started: [ReportedStart(runID: first.runs[0].run.id, at: Self.now + 12_000)], logs: [], results: [],
                now: Self.now + 12_000)
            let afterStart = try await store.takeWork(agentID: agent, now: Self.now + 60_000, redeliverAfter: 10_000)
            #expect(afterStart.runs.isEmpty)
        }
    }

    @Test(arguments: Engine.available)
    func reportsAreIdempotentAndChecked(engine: Engine) async throws {
        try await withStore(engine) { store in
            let fixture = try await Self.fixture(store)
            let (agent, other) = (fixture.agents[0], fixture.agents[1])
            let work = try await store.takeWork(agentID: agent, now: Self.now, redeliverAfter: 10_000)
            let runID = try #require(work.runs.first?.run.id)
            let otherRun = try #require(fixture.runs.first { $0 != runID })
            let logs = [
                ReportedLog(runID: runID, seq: 1, stream: "stdout", data: "a\n", at: Self.now),
                ReportedLog(runID: runID, seq: 2, stream: "stderr", data: "b\n", at: Self.now),
            ]
            let result = ReportedResult(runID: runID, outcome: .succeeded, exitCode: 0, reason: nil, result: "{}", finishedAt: Self.now + 1)
            for _ in 0..<2 {
                let outcome = try await store.applyReport(
                    agentID: agent, started: [ReportedStart(runID: runID, at: Self.now)], logs: logs, results: [result], now: Self.now)
                #expect(outcome.startedAcked == [runID])
                #expect(outcome.logsAcked == [runID: 2])
                #expect(outcome.resultsAcked == [runID])
                #expect(outcome.rejected.isEmpty)
            }
            #expect(try await store.logs(runID: runID, after: 0, limit: 100).map(\.data) == ["a\n", "b\n"])
            let run = try #require(try await store.run(id: runID))
            #expect(run.status == .succeeded)
            #expect(run.exitCode == 0)
            #expect(run.result == "{}")
            // A different outcome after the end, and reports about another agent's run, are refused.
            let late = try await store.applyReport(
                agentID: agent, started: [], logs: [],
                results: [ReportedResult(runID: runID, outcome: .failed, exitCode: 1, reason: "x", result: nil, finishedAt: Self.now)], now: Self.now)
            #expect(late.rejected[runID] != nil)
            #expect(try await store.run(id: runID)?.status == .succeeded)
            let foreign = try await store.applyReport(
                agentID: agent, started: [ReportedStart(runID: otherRun, at: Self.now)],
                logs: [ReportedLog(runID: otherRun, seq: 1, stream: "stdout", data: "x", at: Self.now)], results: [], now: Self.now)
            #expect(foreign.rejected[otherRun] != nil)
            #expect(try await store.logs(runID: otherRun, after: 0, limit: 10).isEmpty)
            #expect(try await store.run(id: otherRun)?.agentID == other)
            #expect(try await store.run(id: otherRun)?.status == .queued)
        }
    }

    @Test(arguments: Engine.available)
    func cancelQueuedEndsAtOnceRunningIsOrdered(engine: Engine) async throws {
        try await withStore(engine) { store in
            let fixture = try await Self.fixture(store)
            let work = try await store.takeWork(agentID: fixture.agents[0], now: Self.now, redeliverAfter: 10_000)
            let running = try #require(work.runs.first?.run.id)
            _ = try await store.applyReport(
                agentID: fixture.agents[0], started: [ReportedStart(runID: running, at: Self.now)], logs: [], results: [], now: Self.now)
            let queued = try #require(fixture.runs.first { $0 != running })
            #expect(try await store.cancelRun(id: queued, now: Self.now, actor: .system).status == .canceled)
            let ordered = try await store.cancelRun(id: running, now: Self.now, actor: .system)
            #expect(ordered.status == .running)
            #expect(ordered.cancelRequested)
            let orders = try await store.takeWork(agentID: fixture.agents[0], now: Self.now, redeliverAfter: 10_000)
            #expect(orders.cancels == [running])
            #expect(try await store.takeWork(agentID: fixture.agents[0], now: Self.now + 1, redeliverAfter: 10_000).cancels.isEmpty)
            #expect(try await store.takeWork(agentID: fixture.agents[1], now: Self.now, redeliverAfter: 10_000).runs.isEmpty)
        }
    }

    @Test(arguments: Engine.available)
    func zoneDeletionIsGuarded(engine: Engine) async throws {
        try await withStore(engine) { store in
            let fixture = try await Self.fixture(store)
            await #expect(throws: StoreError.self) { try await store.deleteZone(named: "z1", force: false, now: 1_800_000_000_000, actor: .system) }
            #expect(try await store.zone(named: "z1")?.agents == 2)
            try await store.deleteZone(named: "z1", force: true, now: 1_800_000_000_000, actor: .system)
            #expect(try await store.zone(named: "z1") == nil)
            #expect(try await store.run(id: fixture.runs[0]) == nil)
            await #expect(throws: StoreError.notFound("no zone named 'z1'")) { try await store.deleteZone(named: "z1", force: true, now: 1_800_000_000_000, actor: .system) }
        }
    }

    @Test(arguments: Engine.available)
    func pagesWalkEveryRunOnce(engine: Engine) async throws {
        try await withStore(engine) { store in
            let fixture = try await Self.fixture(store)
            var task = fixture.task
            for index in 0..<5 {
                task.id = Secrets.newID()
                task.createdAt = Self.now + Int64(index)
                _ = try await store.createTask(task, agentIDs: fixture.agents, actor: .system)
            }
            var seen: [String] = []
            var cursor: Cursor?
            repeat {
                let page = try await store.runs(RunFilter(zoneName: "z1"), after: cursor, limit: 3)
                seen += page.map(\.id)
                cursor = page.count == 3 ? page.last.map { Cursor(createdAt: $0.createdAt, id: $0.id) } : nil
            } while cursor != nil
            #expect(seen.count == 12)
            #expect(Set(seen).count == 12)
            #expect(try await store.runs(RunFilter(agentID: fixture.agents[0], status: .queued), after: nil, limit: 100).count == 6)
        }
    }
}
