import KlevrAPI
import KlevrCore
import KlevrStore

/// Agents as operators see them: listing, one agent, retiring one. (The agent protocol itself, hello,
/// enrollment, sync and lease, keeps its hand-written routes in `Manager+AgentRoutes.swift` for now.)
extension ManagerAPI {
    func listAgents(_ input: Operations.ListAgents.Input) async throws -> Operations.ListAgents.Output {
        let limit = try Self.pageLimit(input.query.limit)
        let agents = try await store.agents(zoneName: input.query.zone, after: try Self.cursor(input.query.cursor), limit: limit)
        let next = agents.count == limit ? agents.last.map { Cursor(createdAt: $0.enrolledAt, id: $0.id).text } : nil
        // One lease lookup per zone on the page, not per agent.
        var unreachable: [String: Bool] = [:]
        var views: [Components.Schemas.Agent] = []
        for agent in agents {
            if unreachable[agent.zoneID] == nil { unreachable[agent.zoneID] = try await manager.zoneUnreachable(agent.zoneID) }
            views.append(view(agent, zoneUnreachable: unreachable[agent.zoneID] ?? false))
        }
        return .ok(.init(body: .json(.init(items: views, nextCursor: next))))
    }

    func getAgent(_ input: Operations.GetAgent.Input) async throws -> Operations.GetAgent.Output {
        let id = try Self.id(input.path.id)
        guard let agent = try await store.agent(id: id) else { throw Problem.notFound("no agent \(id)") }
        return .ok(.init(body: .json(view(agent, zoneUnreachable: try await manager.zoneUnreachable(agent.zoneID)))))
    }

    func retireAgent(_ input: Operations.RetireAgent.Input) async throws -> Operations.RetireAgent.Output {
        let id = try Self.id(input.path.id)
        try await store.retireAgent(id: id, now: Clock.nowMillis(), actor: try context.actor)
        guard let agent = try await store.agent(id: id) else { throw Problem.notFound("no agent \(id)") }
        // Its zone's primary gets the membership without it at once, and every member soon after.
        await manager.zoneMembers.invalidate(agent.zoneID)
        await manager.hub.signal([Manager.agentKey(id), Manager.zoneKey(agent.zoneID)])
        return .ok(.init(body: .json(view(agent))))
    }

    // MARK: - Views

    func view(_ agent: AgentRecord, zoneUnreachable: Bool = false) -> Components.Schemas.Agent {
        let status = manager.status(of: agent, zoneUnreachable: zoneUnreachable)
        return .init(
            id: agent.id, zone: agent.zoneName, hostname: agent.hostname, os: agent.os, version: agent.version, addresses: agent.addresses,
            status: status.value, statusReason: status.reason, lastSeenAt: agent.lastSeenAt, enrolledAt: agent.enrolledAt,
            clockSkewMillis: agent.clockSkewMillis)
    }
}
