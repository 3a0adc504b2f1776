import KlevrAPI

/// The agent protocol: the manager's keys, enrollment (in clear and sealed), the sync exchange and the
/// zone lease. The logic is in `Manager+AgentProtocol.swift` and `Manager+Sync.swift`.
extension ManagerAPI {
    func agentHello(_ input: Operations.AgentHello.Input) async throws -> Operations.AgentHello.Output {
        .ok(.init(body: .json(try manager.hello())))
    }

    func enrollAgent(_ input: Operations.EnrollAgent.Input) async throws -> Operations.EnrollAgent.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("the body must be JSON") }
        return .created(.init(body: .json(try await manager.enroll(body))))
    }

    func enrollAgentSealed(_ input: Operations.EnrollAgentSealed.Input) async throws -> Operations.EnrollAgentSealed.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("the body must be JSON") }
        return .created(.init(body: .json(try await manager.enrollSealed(body))))
    }

    func agentSync(_ input: Operations.AgentSync.Input) async throws -> Operations.AgentSync.Output {
        let agent = try context.requireAgent()
        guard case .json(let body) = input.body else { throw Problem.badRequest("the body must be JSON") }
        return .ok(.init(body: .json(try await manager.sync(agent: agent, request: body))))
    }

    func agentLease(_ input: Operations.AgentLease.Input) async throws -> Operations.AgentLease.Output {
        let agent = try context.requireAgent()
        guard case .json(let body) = input.body else { throw Problem.badRequest("the body must be JSON") }
        return .ok(.init(body: .json(try await manager.lease(agent: agent, request: body))))
    }
}
