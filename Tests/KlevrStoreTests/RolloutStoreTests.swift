import Foundation
import KlevrCore
import KlevrStore
import Testing

/// Rollout limits and labels as the store keeps them, on SQLite and PostgreSQL: `maxConcurrency` holds runs
/// `queued` at dispatch (also when many agents sync at once), `maxErrors` cancels the runs not started with
/// the reason and one `task.rollout_stopped` event, a run's end wakes the agents waiting for the task, and
/// labels change with one `agent.labels_changed` event, the operator's winning over the agent's.
@Suite struct RolloutStoreTests {
    static let now: Int64 = 1_800_000_000_000

    /// A zone with `count` agents and a task on all of them with the given limits.
    static func fanOut(_ store: Store, agents count: Int, maxConcurrency: String?, maxErrors: String?) async throws
        -> (agents: [String], task: TaskRecord)
    {
        let zone = try await store.createZone(name: "z1", description: "", now: now, actor: .system)
        var agents: [String] = []
        for index in 0..<count {
            agents.append(
                try await store.enrollAgent(
                    zoneID: zone.id, publicKey: "pk\(index)", credentialHash: Secrets.hash("cred\(index)"), hostname: "h\(index)", os: "linux",
                    version: "1", addresses: [], now: now))
        }
        let task = TaskRecord(
            id: Secrets.newID(), name: "t", zoneID: zone.id, zoneName: zone.name, targetJSON: #"{"kind":"all"}"#,
            stepsJSON: #"[{"script":"true"}]"#, paramsJSON: "{}", timeoutSeconds: 60, createdAt: now, createdBy: "admin", canceledAt: nil
        ).with(maxConcurrency: maxConcurrency, maxErrors: maxErrors)
        _ = try await store.createTask(task, agentIDs: agents, actor: .system)
        return (agents, task)
    }

    static func runs(_ store: Store, _ task: TaskRecord) async throws -> [RunRecord] {
        try await store.runs(RunFilter(taskID: task.id), after: nil, limit: 1_000)
    }

    static func finish(_ store: Store, _ run: RunRecord, _ outcome: RunOutcome, at: Int64) async throws {
        _ = try await store.applyReport(
            agentID: run.agentID, started: [ReportedStart(runID: run.id, at: at)], logs: [],
            results: [ReportedResult(runID: run.id, outcome: outcome, exitCode: outcome == .succeeded ? 0 : 1, reason: nil, result: nil, finishedAt: at)],
            now: at)
    }

    @Test(arguments: Engine.available)
    func concurrencyHoldsRunsQueuedUntilOneEnds(engine: Engine) async throws {
        try await withStore(engine) { store in
            let (agents, task) = try await Self.fanOut(store, agents: 5, maxConcurrency: "2", maxErrors: nil)
            #expect(try await store.task(id: task.id)?.maxConcurrency == "2")
            // All five agents ask at once in one primary's sync: two runs go out.
            let first = try await store.takeWork(agentIDs: agents, now: Self.now + 10, redeliverAfter: 60_000)
            #expect(first.runs.count == 2)
            // Asking again hands out nothing while two are in flight.
            let again = try await store.takeWork(agentIDs: agents, now: Self.now + 20, redeliverAfter: 60_000)
            #expect(again.runs.isEmpty)
            // One ends: exactly one more goes out.
            let ended = try #require(first.runs.first).run
            try await Self.finish(store, ended, .succeeded, at: Self.now + 30)
            let next = try await store.takeWork(agentIDs: agents, now: Self.now + 40, redeliverAfter: 60_000)
            #expect(next.runs.count == 1)
            let inFlight = try await Self.runs(store, task).filter { [.dispatched, .running].contains($0.status) }
            #expect(inFlight.count == 2)
        }
    }

    @Test(arguments: Engine.available)
    func concurrentSyncsNeverExceedTheLimit(engine: Engine) async throws {
        try await withStore(engine) { store in
            let (agents, task) = try await Self.fanOut(store, agents: 12, maxConcurrency: "25%", maxErrors: nil)
            // Twelve agents sync at once, each on its own: 25% of 12 is 3 at most in flight.
            let handed = try await withThrowingTaskGroup(of: Int.self) { group in
                for agent in agents {
                    group.addTask { try await store.takeWork(agentID: agent, now: Self.now + 10, redeliverAfter: 60_000).runs.count }
                }
                return try await group.reduce(0, +)
            }
            #expect(handed == 3)
            #expect(try await Self.runs(store, task).filter { $0.status == .dispatched }.count == 3)
        }
    }

    @Test(arguments: Engine.available)
    func aWaitingRolloutDoesNotHideTheZonesOtherWorkFromItsPrimary(engine: Engine) async throws {
        try await withStore(engine) { store in
            let (agents, task) = try await Self.fanOut(store, agents: 6, maxConcurrency: "1", maxErrors: nil)
            let other = TaskRecord(
                id: Secrets.newID(), name: "other", zoneID: task.zoneID, zoneName: task.zoneName, targetJSON: #"{"kind":"all"}"#,
                stepsJSON: #"[{"script":"true"}]"#, paramsJSON: "{}", timeoutSeconds: 60, createdAt: Self.now + 1, createdBy: "admin",
                canceledAt: nil)
            _ = try await store.createTask(other, agentIDs: [agents[5]], actor: .system)
            // The primary's poll takes at most 2 runs: the rollout's five waiting ones come first in age, but only
            // one of them may go; the other task's run goes too.
            let work = try await store.takeWork(agentIDs: agents, zoneID: task.zoneID, now: Self.now + 10, redeliverAfter: 60_000, limit: 2)
            #expect(work.runs.count == 2)
            #expect(Set(work.runs.map(\.task.id)) == [task.id, other.id])
        }
    }

    @Test(arguments: Engine.available)
    func errorsBeyondTheLimitCancelTheRunsNotStarted(engine: Engine) async throws {
        try await withStore(engine) { store in
            let (agents, task) = try await Self.fanOut(store, agents: 6, maxConcurrency: "2", maxErrors: "1")
            let first = try await store.takeWork(agentIDs: agents, now: Self.now + 10, redeliverAfter: 60_000).runs.map(\.run)
            #expect(first.count == 2)
            // The first error is within the limit: the rollout goes on.
            try await Self.finish(store, first[0], .failed, at: Self.now + 20)
            #expect(try await Self.runs(store, task).filter { $0.status == .canceled }.isEmpty)
            let second = try await store.takeWork(agentIDs: agents, now: Self.now + 30, redeliverAfter: 60_000).runs.map(\.run)
            #expect(second.count == 1)
            // The second exceeds maxErrors 1: the three runs not started end canceled with the reason, in the
            // same transaction; the one in flight keeps going.
            try await Self.finish(store, first[1], .timedOut, at: Self.now + 40)
            let runs = try await Self.runs(store, task)
            let canceled = runs.filter { $0.status == .canceled }
            #expect(canceled.count == 3)
            #expect(canceled.allSatisfy { $0.reason == "rollout stopped: 2 runs failed, more than maxErrors 1" })
            #expect(runs.first { $0.id == second[0].id }?.status == .dispatched)
            var filter = EventFilter()
            filter.subject = task.id
            let stops = try await store.events(filter, after: 0, limit: 100).filter { $0.kind == .taskRolloutStopped }
            #expect(stops.count == 1)
            #expect(stops.first?.detail["canceled"] == "3")
            for run in canceled {
                filter.subject = run.id
                #expect(try await store.events(filter, after: 0, limit: 100).filter { $0.kind == .runCanceled }.count == 1)
            }
            // The run in flight ends in error too: nothing more to stop, no second event.
            try await Self.finish(store, second[0], .failed, at: Self.now + 50)
            filter.subject = task.id
            #expect(try await store.events(filter, after: 0, limit: 100).filter { $0.kind == .taskRolloutStopped }.count == 1)
        }
    }

    @Test(arguments: Engine.available)
    func twoFailuresReportedAtOnceStopTheRolloutOnce(engine: Engine) async throws {
        try await withStore(engine) { store in
            let (agents, task) = try await Self.fanOut(store, agents: 6, maxConcurrency: "2", maxErrors: "1")
            let first = try await store.takeWork(agentIDs: agents, now: Self.now + 10, redeliverAfter: 60_000).runs.map(\.run)
            #expect(first.count == 2)
            // Both agents report their failure at the same moment, in two transactions: one of them sees both.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for run in first { group.addTask { try await Self.finish(store, run, .failed, at: Self.now + 20) } }
                try await group.waitForAll()
            }
            let runs = try await Self.runs(store, task)
            #expect(runs.filter { $0.status == .canceled }.count == 4)
            var filter = EventFilter()
            filter.subject = task.id
            #expect(try await store.events(filter, after: 0, limit: 100).filter { $0.kind == .taskRolloutStopped }.count == 1)
        }
    }

    @Test(arguments: Engine.available)
    func aRunsEndWakesTheAgentsWaitingForTheTask(engine: Engine) async throws {
        try await withStore(engine) { store in
            let (agents, _) = try await Self.fanOut(store, agents: 3, maxConcurrency: "1", maxErrors: nil)
            let first = try #require(try await store.takeWork(agentIDs: agents, now: Self.now + 10, redeliverAfter: 60_000).runs.first).run
            let waiting = try #require(agents.first { $0 != first.agentID })
            let version = await store.hub.version(Store.agentKey(waiting))
            try await Self.finish(store, first, .succeeded, at: Self.now + 20)
            #expect(await store.hub.version(Store.agentKey(waiting)) != version)
        }
    }

    @Test(arguments: Engine.available)
    func expiredRunsCountAsErrors(engine: Engine) async throws {
        try await withStore(engine) { store in
            let zone = try await store.createZone(name: "z1", description: "", now: Self.now, actor: .system)
            var agents: [String] = []
            for index in 0..<3 {
                agents.append(
                    try await store.enrollAgent(
                        zoneID: zone.id, publicKey: "pk\(index)", credentialHash: Secrets.hash("c\(index)"), hostname: "h\(index)", os: "linux",
                        version: "1", addresses: [], now: Self.now))
            }
            let task = TaskRecord(
                id: Secrets.newID(), name: "t", zoneID: zone.id, zoneName: zone.name, targetJSON: #"{"kind":"all"}"#,
                stepsJSON: #"[{"script":"true"}]"#, paramsJSON: "{}", timeoutSeconds: 60, createdAt: Self.now, createdBy: "admin", canceledAt: nil,
                deliverWithinSeconds: 10
            ).with(maxConcurrency: "1", maxErrors: "0")
            _ = try await store.createTask(task, agentIDs: agents, actor: .system)
            let handed = try await store.takeWork(agentIDs: agents, now: Self.now + 10, redeliverAfter: 60_000).runs.map(\.run)
            #expect(handed.count == 1)
            // The two queued runs pass their deadline: the first expiry is an error beyond maxErrors 0.
            let expired = try await store.expireOverdueRuns(now: Self.now + 10_001, grace: 5_000)
            #expect(expired.count == 2)
            #expect(try await Self.runs(store, task).filter { $0.status == .expired }.count == 2)
            var filter = EventFilter()
            filter.subject = task.id
            // Nothing was left to cancel (both expired in the same pass), so no stop is recorded.
            #expect(try await store.events(filter, after: 0, limit: 100).filter { $0.kind == .taskRolloutStopped }.isEmpty)
        }
    }

    @Test(arguments: Engine.available)
    func labelsFromTheAgentCountUntilAnOperatorSetsThem(engine: Engine) async throws {
        try await withStore(engine) { store in
            let zone = try await store.createZone(name: "z1", description: "", now: Self.now, actor: .system)
            let id = try await store.enrollAgent(
                zoneID: zone.id, publicKey: "pk", credentialHash: Secrets.hash("c"), hostname: "h", os: "linux", version: "1", addresses: [],
                labels: ["env": "prod"], now: Self.now)
            #expect(try await store.agent(id: id)?.labels == ["env": "prod"])
            var filter = EventFilter()
            filter.subject = id
            filter.kinds = [.agentLabelsChanged]
            #expect(try await store.events(filter, after: 0, limit: 10).count == 1)

            let operatorActor = EventActor(kind: .user, id: "u1", name: "ann")
            let set = try await store.setLabels(agentID: id, labels: ["env": "staging"], actor: operatorActor, now: Self.now + 1)
            #expect(set.labels == ["env": "staging"] && set.labelsSetBy == "ann")
            // The agent reports its own labels again (a restart): they are kept but the operator's win.
            _ = try await store.applyReports(
                [ReportedBatch(agentID: id, started: [], logs: [], results: [], labels: ["env": "prod", "role": "web"])], now: Self.now + 2)
            let kept = try #require(try await store.agent(id: id))
            #expect(kept.labels == ["env": "staging"] && kept.reportedLabels == ["env": "prod", "role": "web"])
            let selector = try LabelSelector("env=prod")
            #expect(try await store.activeAgents(matching: selector, zoneID: nil).isEmpty)
            // Cleared: the agent's labels count again.
            let cleared = try await store.setLabels(agentID: id, labels: nil, actor: operatorActor, now: Self.now + 3)
            #expect(cleared.labels == ["env": "prod", "role": "web"] && cleared.labelsSetBy == nil)
            #expect(try await store.activeAgents(matching: selector, zoneID: nil).map(\.id) == [id])
            #expect(try await store.events(filter, after: 0, limit: 10).count == 3)
            let page = try await store.agents(zoneName: nil, selector: try LabelSelector("role=web"), after: nil, limit: 10)
            #expect(page.agents.map(\.id) == [id])
        }
    }
}
