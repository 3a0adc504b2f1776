import KlevrAPI
import KlevrCore
import KlevrStore

/// Agents as operators see them: listing, one agent, retiring one. (The agent protocol itself, hello,
/// enrollment, sync and lease, keeps its hand-written routes in `Manager+AgentRoutes.swift` for now.)
extension ManagerAPI {
    func listAgents(_ input: Operations.ListAgents.Input) async throws -> Operations.ListAgents.Output {
        let limit = try Self.pageLimit(input.query.limit)
        let cursor = try Self.cursor(input.query.cursor)
        let agents: [AgentRecord]
        let next: String?
        if let text = input.query.selector {
            let selector: LabelSelector
            do {
                selector = try LabelSelector(text)
            } catch {
                throw Problem.invalid("selector", error.description)
            }
            let page = try await store.agents(zoneName: input.query.zone, selector: selector, after: cursor, limit: limit)
            agents = page.agents
            next = page.next?.text
        } else {
            agents = try await store.agents(zoneName: input.query.zone, after: cursor, limit: limit)
            next = agents.count == limit ? agents.last.map { Cursor(createdAt: $0.enrolledAt, id: $0.id).text } : nil
        }
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

    func setAgentLabels(_ input: Operations.SetAgentLabels.Input) async throws -> Operations.SetAgentLabels.Output {
        let id = try Self.id(input.path.id)
        guard case .json(let body) = input.body else { throw Problem.badRequest("the body must be JSON") }
        let labels: Labels
        do {
            labels = try Labels(body.labels.additionalProperties)
        } catch {
            throw Problem.invalid("labels", error.description)
        }
        let agent = try await store.setLabels(agentID: id, labels: labels.values, actor: try context.actor, now: Clock.nowMillis())
        return .ok(.init(body: .json(view(agent, zoneUnreachable: try await manager.zoneUnreachable(agent.zoneID)))))
    }

    func clearAgentLabels(_ input: Operations.ClearAgentLabels.Input) async throws -> Operations.ClearAgentLabels.Output {
        let id = try Self.id(input.path.id)
        let agent = try await store.setLabels(agentID: id, labels: nil, actor: try context.actor, now: Clock.nowMillis())
        return .ok(.init(body: .json(view(agent, zoneUnreachable: try await manager.zoneUnreachable(agent.zoneID)))))
    }

    // MARK: - Views

    func view(_ agent: AgentRecord, zoneUnreachable: Bool = false) -> Components.Schemas.Agent {
        let status = manager.status(of: agent, zoneUnreachable: zoneUnreachable)
        return .init(
            id: agent.id, zone: agent.zoneName, hostname: agent.hostname, os: agent.os, version: agent.version, addresses: agent.addresses,
            status: status.value, statusReason: status.reason, lastSeenAt: agent.lastSeenAt, enrolledAt: agent.enrolledAt,
            clockSkewMillis: agent.clockSkewMillis, labels: .init(additionalProperties: agent.labels),
            reportedLabels: agent.labelsSetBy == nil ? nil : .init(additionalProperties: agent.reportedLabels), labelsSetBy: agent.labelsSetBy,
            managerRoute: agent.managerRoute, peerAddress: agent.peerAddress.isEmpty ? nil : agent.peerAddress)
    }
}
