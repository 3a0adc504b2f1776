import Foundation
import KlevrAPI
import KlevrCore
import KlevrStore
import Logging
import ServiceLifecycle

/// Records `agent_online` / `agent_offline` events (with the reason) when an agent's liveness changes.
///
/// Liveness itself is computed from `last_seen_at` whenever it is read; this service only notices the
/// changes, once per heartbeat interval. It starts from what it sees at its first pass, without events,
/// so a manager restart does not report every agent as newly online.
struct LivenessSweeper: Service {
    let manager: Manager

    func run() async throws {
        // On PostgreSQL the schema is migrated when the application starts, alongside this service.
        await cancelWhenGracefulShutdown { await manager.prepared.wait() }
        var known: [String: String] = [:]
        var first = true
        let interval = Duration.seconds(max(1, manager.config.heartbeatSeconds))
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                known = try await sweep(known, recordEvents: !first)
                first = false
            } catch {
                manager.logger.warning("liveness sweep failed", metadata: ["error": "\(DatabaseErrors.describe(error))"])
            }
            // A graceful shutdown ends the wait at once, so the manager stops without waiting a heartbeat.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    func sweep(_ known: [String: String], recordEvents: Bool) async throws -> [String: String] {
        // Agents asked to retire that never confirmed their runs stopped are retired after a grace.
        let now = Clock.nowMillis()
        let grace = Int64(max(60, 6 * manager.config.heartbeatSeconds)) * 1000
        for retired in try await manager.store.finishOverdueRetirements(requestedBefore: now - grace, now: now) {
            await manager.zoneMembers.invalidate(retired.zoneID)
            await manager.hub.signal([Manager.agentKey(retired.id), Manager.zoneKey(retired.zoneID)])
        }
        let agents = try await manager.store.agents(zoneName: nil, after: nil, limit: 100_000)
        var next: [String: String] = [:]
        var unreachable: [String: Bool] = [:]
        for agent in agents where agent.retiredAt == nil && agent.retireRequestedAt == nil {
            if unreachable[agent.zoneID] == nil { unreachable[agent.zoneID] = try await manager.zoneUnreachable(agent.zoneID) }
            let status = manager.status(of: agent, zoneUnreachable: unreachable[agent.zoneID] ?? false)
            let state = status.text
            next[agent.id] = state
            guard recordEvents, let before = known[agent.id], before != state else { continue }
            let kind: EventKind = status.value == .online ? .agentOnline : .agentOffline
            try await manager.store.record(
                kind, actor: .system, zoneID: agent.zoneID, subject: agent.id, detail: ["state": state], now: Clock.nowMillis())
            manager.logger.info("agent liveness changed", metadata: ["agent.id": "\(agent.id)", "state": "\(state)"])
        }
        return next
    }
}

extension LivenessSweeper: CustomStringConvertible {
    /// Service names are logged by the service group: never let the manager's configuration (secrets) in.
    var description: String { "LivenessSweeper" }
}
