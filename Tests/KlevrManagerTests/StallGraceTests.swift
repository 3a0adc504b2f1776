import Foundation
import KlevrAPI
import KlevrCore
@testable import KlevrManager
import KlevrStore
import Testing

/// A manager that was paused does not blame its agents for the heartbeats it could not receive.
@Suite struct StallGraceTests {
    @Test func aLongGapBetweenTicksIsAStall() {
        let start = ContinuousClock.now
        var detector = StallDetector(start: start, threshold: .seconds(3))
        #expect(detector.tick(at: start + .milliseconds(500), wallMillis: 1_000) == nil)
        #expect(detector.tick(at: start + .seconds(2), wallMillis: 2_500) == nil)
        #expect(detector.resumedAtMillis == 0)
        // Stopped for 60 s: the tick that ends it sets the resume time.
        #expect(detector.tick(at: start + .seconds(62), wallMillis: 62_500) == .seconds(60))
        #expect(detector.resumedAtMillis == 62_500)
        // Before the loop has ticked again, a reader that finds the tick old counts "now" as the resume time.
        #expect(detector.resumedAt(at: start + .seconds(120), wallMillis: 120_500) == 120_500)
        #expect(detector.resumedAt(at: start + .seconds(63), wallMillis: 63_500) == 62_500)
    }

    @Test func noAgentGoesOfflineWhenTheManagerResumes() async throws {
        let harness = try await TestManager.make()
        let base = harness.manager
        // A manager started long ago whose ticking loop last ran 60 s ago: it was stopped since.
        let manager = Manager(
            config: base.config, store: base.store, logger: base.logger, hub: base.hub, passwords: base.passwords, throttle: base.throttle,
            startedAt: 0, operations: base.operations, stalls: StallClock(start: .now - .seconds(60)))
        let store = manager.store
        let now = Clock.nowMillis()
        let zone = try await store.createZone(name: "z", description: "", now: now, actor: .system)
        let agent = try await store.enrollAgent(
            zoneID: zone.id, publicKey: "pk", credentialHash: "c", hostname: "h", os: "l", version: "1", addresses: [], now: now)
        let sweeper = LivenessSweeper(manager: manager)
        var known = try await sweeper.sweep([:], recordEvents: false)
        #expect(known[agent] == "online")
        // Last heard from before the stall, 60 s ago: that silence was the manager's.
        try await store.touchAgent(id: agent, now: now - 60_000)
        known = try await sweeper.sweep(known, recordEvents: true)
        #expect(known[agent] == "online")
        // The loop ticks once (ending the stall); the grace still holds from the resume time.
        #expect(manager.stalls.tick() != nil)
        known = try await sweeper.sweep(known, recordEvents: true)
        #expect(known[agent] == "online")
        var liveness = EventFilter()
        liveness.zone = zone.id
        liveness.kinds = [.agentOnline, .agentOffline]
        #expect(try await store.events(liveness, limit: 10).isEmpty)

        // Without a stall the same silence is an offline agent (the check can fail). Its stall clock's last
        // tick is ahead of the sweep, so that a slow sweep on a loaded machine does not read as a stall.
        let steady = Manager(
            config: base.config, store: base.store, logger: base.logger, hub: base.hub, passwords: base.passwords, throttle: base.throttle,
            startedAt: 0, operations: base.operations, stalls: StallClock(start: .now + .seconds(600)))
        #expect(try await LivenessSweeper(manager: steady).sweep([:], recordEvents: false)[agent] == "offline: missed heartbeats")
        await store.database.close()
    }
}
