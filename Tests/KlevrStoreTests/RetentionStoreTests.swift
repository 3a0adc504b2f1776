import Foundation
import KlevrCore
import KlevrStore
import SQLKit
import Testing

/// The retention sweep removes old history and nothing that is still needed, in small transactions; the
/// same on SQLite and PostgreSQL, with times given by the test.
@Suite struct RetentionStoreTests {
    static let now = StoreConformanceTests.now

    static func task(_ zone: ZoneRecord, at: Int64, runAt: Int64? = nil) -> TaskRecord {
        TaskRecord(
            id: Secrets.newID(), name: "t", zoneID: zone.id, zoneName: zone.name, targetJSON: #"{"kind":"all"}"#,
            stepsJSON: #"[{"script":"echo hi"}]"#, paramsJSON: "{}", timeoutSeconds: 60, createdAt: at, createdBy: "admin", canceledAt: nil,
            runAt: runAt)
    }

    static func addLogs(_ store: Store, runID: String, count: Int) async throws {
        try await store.database.transaction { db in
            for seq in 1...count {
                try await db.raw(
                    "INSERT INTO run_logs (run_id, seq, stream, data, at) VALUES (\(bind: runID), \(bind: Int64(seq)), 'stdout', 'line', \(bind: Self.now))"
                ).run()
            }
        }
    }

    static func count(_ store: Store, _ table: String) async throws -> Int {
        try await store.database.read { db in
            try await db.raw("SELECT COUNT(*) AS n FROM \(unsafeRaw: table)").first()?.decode(column: "n", as: Int.self) ?? -1
        }
    }

    @Test(arguments: Engine.available)
    func oldHistoryGoesAndWhatIsStillNeededStays(engine: Engine) async throws {
        try await withStore(engine) { store in
            let fixture = try await StoreConformanceTests.fixture(store)
            let (zone, agents) = (fixture.zone, fixture.agents)
            let old = Self.now + 1_000
            let cutoff = Self.now + 2_000
            let recent = Self.now + 3_000

            // An old one-off task, both runs ended long ago, with output: all of it goes.
            _ = try await store.cancelTask(id: fixture.task.id, now: old, actor: .system)
            try await Self.addLogs(store, runID: fixture.runs[0], count: 3)
            // An old task with one run ended and one still queued (a rollout still counts the ended one): stays.
            let busy = Self.task(zone, at: Self.now)
            let busyRuns = try await store.createTask(busy, agentIDs: agents, actor: .system)
            _ = try await store.cancelRun(id: busyRuns[0], now: old, actor: .system)
            // An old task whose run waits for a later time: stays.
            let later = Self.task(zone, at: Self.now, runAt: Self.now + 86_400_000)
            _ = try await store.createTask(later, agentIDs: [agents[0]], actor: .system)
            // A task whose runs ended recently: stays.
            let fresh = Self.task(zone, at: Self.now)
            let freshRuns = try await store.createTask(fresh, agentIDs: [agents[1]], actor: .system)
            _ = try await store.cancelRun(id: freshRuns[0], now: recent, actor: .system)

            // Webhook deliveries: an old succeeded one goes; an old pending one (still being tried) and a
            // recent succeeded one stay.
            let hook = try await store.createWebhook(
                WebhookRecord(
                    id: Secrets.newID(), url: "http://127.0.0.1:9/", description: "", kinds: try EventKindFilter(parsing: ["zone"]), zoneID: nil,
                    enabled: true, createdAt: Self.now, updatedAt: Self.now, createdBy: "admin"),
                sealedSecret: "sealed", actor: .system)
            var cursor = try await store.webhookCursor()
            var last = try await store.lastEventID()
            let oldDeliveries = (0..<2).map { NewWebhookDelivery(webhookID: hook.id, eventID: last, eventKind: "zone.created", payload: "{\"n\":\($0)}") }
            #expect(try await store.enqueueWebhookDeliveries(oldDeliveries, from: cursor, to: last, now: Self.now))
            let jobs = try await store.webhookJobs(now: Self.now, limit: 10, leaseMillis: 30_000)
            #expect(jobs.count == 2)
            let done = WebhookAttemptRecord(attempt: 1, at: Self.now, statusCode: 200, durationMillis: 3, error: nil)
            #expect(try await store.recordWebhookAttempt(jobs[0], done, succeeded: true, nextAttemptAt: nil))
            // Events after the cutoff (the zone created now) stay; the queue has passed every event so far.
            let laterZone = try await store.createZone(name: "z-recent", description: "", now: recent, actor: .system)
            cursor = try await store.webhookCursor()
            last = try await store.lastEventID()
            let recentDelivery = NewWebhookDelivery(webhookID: hook.id, eventID: last, eventKind: "zone.created", payload: "{}")
            #expect(try await store.enqueueWebhookDeliveries([recentDelivery], from: cursor, to: last, now: recent))
            let recentJobs = try await store.webhookJobs(now: recent, limit: 10, leaseMillis: 30_000)
            let recentJob = try #require(recentJobs.first { $0.deliveryID != jobs[1].deliveryID })
            #expect(try await store.recordWebhookAttempt(recentJob, done, succeeded: true, nextAttemptAt: nil))
            // An event the webhook queue has not passed yet stays whatever its age.
            _ = try await store.createZone(name: "z-unqueued", description: "", now: old, actor: .system)

            // Sessions: an expired one goes, a live one stays.
            let user = try await store.createUser(username: "ann", passwordHash: "h", role: .viewer, now: Self.now)
            try await store.createSession(userID: user.id, tokenHash: "expired", csrf: "c", now: Self.now, expiresAt: cutoff, actor: .system)
            try await store.createSession(userID: user.id, tokenHash: "live", csrf: "c", now: Self.now, expiresAt: recent + 3_600_000, actor: .system)

            let eventsBefore = try await store.events(EventFilter(), limit: 1_000)
            let policy = RetentionPolicy(runsBefore: cutoff, eventsBefore: cutoff)
            // Batches of one: every loop runs several times.
            let counts = try await store.prune(policy, now: recent, batch: 1)
            #expect(counts.runs == 2)
            #expect(counts.logChunks == 3)
            #expect(counts.tasks == 1)
            #expect(counts.deliveries == 1)
            #expect(counts.sessions == 1)

            for id in fixture.runs { #expect(try await store.run(id: id) == nil) }
            #expect(try await store.task(id: fixture.task.id) == nil)
            #expect(try await store.logs(runID: fixture.runs[0], after: 0, limit: 10).isEmpty)
            #expect(try await store.run(id: busyRuns[0])?.status == .canceled)
            #expect(try await store.task(id: busy.id) != nil)
            #expect(try await store.task(id: later.id) != nil)
            #expect(try await store.run(id: freshRuns[0])?.status == .canceled)
            let deliveries = try await store.webhookDeliveries(webhookID: hook.id, before: nil, limit: 10)
            #expect(Set(deliveries.map(\.id)) == Set([jobs[1].deliveryID, recentJob.deliveryID]))
            #expect(try await Self.count(store, "webhook_attempts") == 1)
            #expect(try await store.session(tokenHash: "live", now: recent) != nil)
            #expect(try await Self.count(store, "sessions") == 1)

            // Events: those before the cutoff that the queue passed are gone; the rest stay.
            let queued = try await store.webhookCursor()
            let eventsAfter = try await store.events(EventFilter(), limit: 1_000)
            let expectedGone = eventsBefore.filter { $0.at < cutoff && $0.id <= queued }
            #expect(!expectedGone.isEmpty)
            #expect(counts.events == expectedGone.count)
            #expect(Set(eventsAfter.map(\.id)) == Set(eventsBefore.map(\.id)).subtracting(expectedGone.map(\.id)))
            #expect(eventsAfter.contains { $0.subject == laterZone.id })
            #expect(eventsAfter.contains { $0.at < cutoff && $0.id > queued }, "an event the queue has not passed stays")

            // A second sweep removes nothing more.
            #expect(try await store.prune(policy, now: recent, batch: 1).total == 0)
            // Nothing is removed with retention off, however old.
            #expect(try await store.prune(RetentionPolicy(runsBefore: nil, eventsBefore: nil), now: recent + 60_000).total == 0)
        }
    }

    /// Ids continue from the newest event: it stays however old, so that the webhook cursor and followers
    /// (`after`, `Last-Event-ID`) never see an id again.
    @Test(arguments: Engine.available)
    func theNewestEventStaysSoIdsNeverRepeat(engine: Engine) async throws {
        try await withStore(engine) { store in
            _ = try await store.createZone(name: "z-a", description: "", now: Self.now, actor: .system)
            _ = try await store.createZone(name: "z-b", description: "", now: Self.now + 1, actor: .system)
            let newest = try await store.lastEventID()
            // The webhook queue has passed every event.
            #expect(try await store.enqueueWebhookDeliveries([], from: try await store.webhookCursor(), to: newest, now: Self.now))
            let counts = try await store.prune(RetentionPolicy(runsBefore: nil, eventsBefore: Self.now + 86_400_000), now: Self.now + 86_400_000)
            #expect(counts.events == Int(newest) - 1)
            #expect(try await store.events(EventFilter(), limit: 10).map(\.id) == [newest])
            _ = try await store.createZone(name: "z-c", description: "", now: Self.now + 86_400_000, actor: .system)
            #expect(try await store.lastEventID() == newest + 1)
        }
    }

    /// A stuck run keeps its own fan-out (one occurrence of the task), not the task's whole history.
    @Test(arguments: Engine.available)
    func aStuckRunKeepsItsFanOutOnly(engine: Engine) async throws {
        try await withStore(engine) { store in
            let fixture = try await StoreConformanceTests.fixture(store)
            // The fixture's task ends long ago (canceled); another task has two fan-outs.
            _ = try await store.cancelTask(id: fixture.task.id, now: Self.now + 1_000, actor: .system)
            let task = Self.task(fixture.zone, at: Self.now)
            let first = try await store.createTask(task, agentIDs: fixture.agents, actor: .system)
            for id in first { _ = try await store.cancelRun(id: id, now: Self.now + 1_000, actor: .system) }
            // A second fan-out (run now) whose run never ends.
            let second = try await store.runTaskNow(
                taskID: task.id, targets: [RunTarget(agentID: fixture.agents[0], zoneID: fixture.zone.id)], now: Self.now + 2_000, actor: .system,
                refuseWhileActive: false)
            #expect(second.count == 1 && second[0].occurrence == Self.now + 2_000)
            let counts = try await store.prune(RetentionPolicy(runsBefore: Self.now + 10_000, eventsBefore: nil), now: Self.now + 10_000, batch: 1)
            // The first fan-outs of both tasks go; the stuck one and its task stay.
            #expect(counts.runs == fixture.runs.count + first.count)
            for id in first + fixture.runs { #expect(try await store.run(id: id) == nil) }
            #expect(try await store.run(id: second[0].id)?.status == .queued)
            #expect(try await store.task(id: task.id) != nil)
            // A second run now on the same millisecond is a fan-out of its own.
            let third = try await store.runTaskNow(
                taskID: task.id, targets: [RunTarget(agentID: fixture.agents[1], zoneID: fixture.zone.id)], now: Self.now + 2_000, actor: .system,
                refuseWhileActive: false)
            #expect(third.first?.occurrence == Self.now + 2_001)
        }
    }
}
