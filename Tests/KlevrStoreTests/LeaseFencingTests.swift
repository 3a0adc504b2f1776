import Foundation
import KlevrCore
import KlevrStore
import Testing

/// The zone lease: a compare-and-set with a fencing epoch, the same on SQLite and PostgreSQL.
@Suite struct LeaseFencingTests {
    static let now: Int64 = 1_800_000_000_000

    @Test(arguments: Engine.available)
    func leaseIsGrantedRenewedRefusedAndTakenOverWithANewEpoch(engine: Engine) async throws {
        try await withStore(engine) { store in
            let zone = try await store.createZone(name: "z1", description: "", now: Self.now, actor: .system).id
            #expect(try await store.acquireLease(zoneID: zone, agentID: "a", now: Self.now, duration: 3_000)
                == .granted(epoch: 1, expiresAt: Self.now + 3_000, elected: true))
            #expect(try await store.acquireLease(zoneID: zone, agentID: "b", now: Self.now + 1_000, duration: 3_000)
                == .held(holder: "a", epoch: 1, expiresAt: Self.now + 3_000))
            #expect(try await store.acquireLease(zoneID: zone, agentID: "a", now: Self.now + 2_000, duration: 3_000)
                == .granted(epoch: 1, expiresAt: Self.now + 5_000, elected: false))
            // Expired: the first to ask takes it with the next epoch; the old holder is refused.
            #expect(try await store.acquireLease(zoneID: zone, agentID: "b", now: Self.now + 5_000, duration: 3_000)
                == .granted(epoch: 2, expiresAt: Self.now + 8_000, elected: true))
            #expect(try await store.acquireLease(zoneID: zone, agentID: "a", now: Self.now + 5_001, duration: 3_000)
                == .held(holder: "b", epoch: 2, expiresAt: Self.now + 8_000))
            var inZone = EventFilter()
            inZone.zone = zone
            inZone.kinds = [.primaryElected, .primaryRetired]
            let events = try await store.events(inZone, after: 0, limit: 10)
            #expect(events.map(\.kind) == [.primaryElected, .primaryRetired, .primaryElected])
            #expect(events.contains { $0.kind == .primaryRetired && $0.subject == "a" && $0.detail["epoch"] == "1" })
            #expect(events.contains { $0.kind == .primaryElected && $0.subject == "b" && $0.detail["epoch"] == "2" })
        }
    }

    @Test(arguments: Engine.available)
    func nothingFromAStaleEpochIsApplied(engine: Engine) async throws {
        try await withStore(engine) { store in
            let fixture = try await StoreConformanceTests.fixture(store)
            let (primary, other) = (fixture.agents[0], fixture.agents[1])
            let zone = fixture.zone.id
            guard case .granted(let epoch, _, _) = try await store.acquireLease(zoneID: zone, agentID: primary, now: Self.now, duration: 3_000) else {
                Issue.record("no lease")
                return
            }
            let work = try await store.takeWork(agentID: other, now: Self.now, redeliverAfter: 10_000)
            let runID = try #require(work.runs.first?.run.id)
            let fence = Fence(zoneID: zone, primaryID: primary, epoch: epoch, leaseDuration: 3_000)
            // The primary relays the other agent's start under its epoch: applied, lease renewed.
            _ = try await store.applyReport(
                agentID: other, started: [ReportedStart(runID: runID, at: Self.now)], logs: [], results: [], now: Self.now + 2_000, fence: fence)
            #expect(try await store.run(id: runID)?.status == .running)
            #expect(try await store.lease(zoneID: zone)?.expiresAt == Self.now + 5_000)
            // The lease expires and another agent takes over: the old primary's reports are refused whole.
            _ = try await store.acquireLease(zoneID: zone, agentID: other, now: Self.now + 6_000, duration: 3_000)
            await #expect(throws: StoreError.self) {
                _ = try await store.applyReport(
                    agentID: other, started: [], logs: [ReportedLog(runID: runID, seq: 1, stream: "stdout", data: "late", at: Self.now)],
                    results: [ReportedResult(runID: runID, outcome: .succeeded, exitCode: 0, reason: nil, result: nil, finishedAt: Self.now)],
                    now: Self.now + 6_001, fence: fence)
            }
            #expect(try await store.run(id: runID)?.status == .running)
            #expect(try await store.logs(runID: runID, after: 0, limit: 10).isEmpty)
            // An expired lease fences too, even before anybody else takes it.
            let zone2 = try await store.createZone(name: "z2", description: "", now: Self.now, actor: .system).id
            _ = try await store.acquireLease(zoneID: zone2, agentID: primary, now: Self.now, duration: 1_000)
            await #expect(throws: StoreError.staleEpoch("epoch 1 is not the zone's current lease; step down")) {
                _ = try await store.applyReport(
                    agentID: primary, started: [], logs: [], results: [], now: Self.now + 1_000,
                    fence: Fence(zoneID: zone2, primaryID: primary, epoch: 1, leaseDuration: 1_000))
            }
        }
    }
}
