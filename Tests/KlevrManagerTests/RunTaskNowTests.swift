import Foundation
import HTTPTypes
import KlevrAPI
import KlevrClient
import KlevrCore
@testable import KlevrManager
import KlevrStore
import Testing

/// `POST /api/v1/tasks/{id}/run`: a task runs again now, on its target as it is now, whatever its
/// schedule; refusals for what cannot run, and for whom may not.
@Suite struct RunTaskNowTests {
    @Test func aTaskRunsNowWithoutMovingItsScheduleAndRefusesWhatCannotRun() async throws {
        let harness = try await TestManager.make()
        let store = harness.manager.store
        try await harness.test { client in
            let admin = try await client.token()
            let viewer = try await client.user("vera", role: .viewer, admin: admin)
            let operatorToken = try await client.user("otto", role: .operator_, admin: admin)
            let key = try await client.zoneWithKey("zone-n", admin: admin).key
            let agent = try await client.enroll(zone: "zone-n", key: key)
            let api = try client.api(token: operatorToken)

            // A recurring task (once a year, overlap skip): nothing has run yet.
            let yearly = try await api.createTask(
                body: .json(
                    .init(
                        zone: "zone-n", target: .agent(agent.agentId), steps: [.init(script: "echo now")],
                        schedule: .init(cron: "0 4 1 1 *", timeZone: "UTC", overlap: .skip)))
            ).created.body.json
            let schedule = try #require(yearly.schedule)
            let runs = try await api.runTaskNow(path: .init(id: yearly.id)).created.body.json.items
            #expect(runs.count == 1)
            #expect(runs.first?.agentId == agent.agentId)
            #expect(runs.first?.status == .queued)
            // The schedule did not move: the same next fire times, nothing counted as an occurrence.
            let after = try await api.getTask(path: .init(id: yearly.id)).ok.body.json
            #expect(after.schedule?.nextFireTimes == schedule.nextFireTimes)
            #expect(after.schedule?.firedCount == schedule.firedCount)
            #expect(after.runs.map(\.id) == runs.map(\.id))
            var fired = EventFilter()
            fired.kinds = [.taskFired]
            fired.subject = yearly.id
            let event = try #require(try await store.events(fired, limit: 10).first)
            #expect(event.detail["manual"] == "true")
            #expect(event.actor.name == "otto")

            // Overlap skip: not again while that run has not ended.
            let busy = try await client.call(.post, "/api/v1/tasks/\(yearly.id)/run", token: operatorToken)
            #expect(busy.status == .conflict, "\(busy.body)")
            #expect(busy.body.contains("has not ended"), "\(busy.body)")
            #expect(try await store.runs(RunFilter(taskID: yearly.id), after: nil, limit: 10).count == 1)

            // A one-off task runs again beside its first run (no overlap policy).
            let once = try await api.createTask(body: .json(.init(zone: "zone-n", target: .agent(agent.agentId), steps: [.init(script: "true")])))
                .created.body.json
            let again = try await api.runTaskNow(path: .init(id: once.id)).created.body.json.items
            #expect(again.count == 1)
            #expect(!once.runs.map(\.id).contains(again[0].id))
            #expect(try await store.runs(RunFilter(taskID: once.id), after: nil, limit: 10).count == 2)

            // Refusals: a viewer; a task that does not exist; a canceled task; a malformed id. Nothing is created.
            #expect(try await client.call(.post, "/api/v1/tasks/\(once.id)/run", token: viewer).status == .forbidden)
            #expect(try await client.call(.post, "/api/v1/tasks/\(Secrets.newID())/run", token: operatorToken).status == .notFound)
            _ = try await api.cancelTask(path: .init(id: once.id))
            let canceled = try await client.call(.post, "/api/v1/tasks/\(once.id)/run", token: operatorToken)
            #expect(canceled.status == .conflict)
            #expect(canceled.body.contains("canceled"), "\(canceled.body)")
            #expect(try await client.call(.post, "/api/v1/tasks/..%2F/run", token: operatorToken).status != .created)
            #expect(try await store.runs(RunFilter(taskID: once.id), after: nil, limit: 10).count == 2)

            // A task whose target has no agent now: the agent was retired.
            let lone = try await api.createTask(body: .json(.init(zone: "zone-n", target: .agent(agent.agentId), steps: [.init(script: "true")])))
                .created.body.json
            let retired = try await client.call(.post, "/api/v1/agents/\(agent.agentId)/retire", token: admin)
            #expect(retired.status.code < 300, "\(retired.body)")
            let nobody = try await client.call(.post, "/api/v1/tasks/\(lone.id)/run", token: operatorToken)
            #expect(nobody.status == .conflict, "\(nobody.body)")
            #expect(nobody.body.contains("no agent to run on"), "\(nobody.body)")
        }
    }
}
