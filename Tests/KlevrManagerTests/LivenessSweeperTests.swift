import Foundation
import KlevrAPI
import KlevrCore
@testable import KlevrManager
import KlevrStore
import Testing

/// Liveness changes are recorded as zone events, with the reason.
@Suite struct LivenessSweeperTests {
    @Test func anAgentGoingSilentAndComingBackIsRecorded() async throws {
        let harness = try await TestManager.make()
        let base = harness.manager
        // The same manager, started long ago (outside the restart grace period).
        let manager = Manager(
            config: base.config, store: base.store, logger: base.logger, hub: base.hub, passwords: base.passwords, throttle: base.throttle,
            startedAt: 0, operations: base.operations)
        let store = manager.store
        let now = Clock.nowMillis()
        let zone = try await store.createZone(name: "z", description: "", now: now, actor: .system)
        let agent = try await store.enrollAgent(
            zoneID: zone.id, publicKey: "pk", credentialHash: "c", hostname: "h", os: "l", version: "1", addresses: [], now: now)
        // The stall watch does not run here: each sweep gets a stall clock whose last tick is ahead of it, or
        // a slow step (more than 3 s between the clock's start and the sweep's reads, on a loaded machine)
        // reads as a manager that just resumed from a stall, whose grace keeps every agent online.
        func sweeper() -> LivenessSweeper {
            var fresh = manager
            fresh.stalls = StallClock(start: .now + .seconds(600))
            return LivenessSweeper(manager: fresh)
        }
        // Seen just now (setting up may take longer than three heartbeats on a loaded machine).
        try await store.touchAgent(id: agent, now: Clock.nowMillis())
        var known = try await sweeper().sweep([:], recordEvents: false)
        #expect(known[agent] == "online")
        var inZone = EventFilter()
        inZone.zone = zone.id
        inZone.kinds = [.agentOnline, .agentOffline]
        #expect(try await store.events(inZone, limit: 10).isEmpty)

        try await store.touchAgent(id: agent, now: now - 60_000)
        known = try await sweeper().sweep(known, recordEvents: true)
        #expect(known[agent] == "offline: missed heartbeats")
        try await store.touchAgent(id: agent, now: Clock.nowMillis())
        known = try await sweeper().sweep(known, recordEvents: true)
        let events = try await store.events(inZone, after: 0, limit: 10)
        #expect(events.map(\.kind) == [.agentOffline, .agentOnline])
        #expect(events.first { $0.kind == .agentOffline }?.detail["state"] == "offline: missed heartbeats")
        #expect(events.allSatisfy { $0.subject == agent && $0.actor == .system })
        await store.database.close()
    }
}
