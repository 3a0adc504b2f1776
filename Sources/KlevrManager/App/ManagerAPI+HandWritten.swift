import HTTPTypes
import KlevrAPI

/// The operations still served by their hand-written routes (`Manager+*Routes.swift`): their generated
/// handlers are not registered (see ``SelectedOperations``), so these bodies are never reached. Each
/// group leaves this file when its feature moves to the generated server.
extension ManagerAPI {
    // MARK: - Agents: the agent protocol

    func agentHello(_ input: Operations.AgentHello.Input) async throws -> Operations.AgentHello.Output { throw Problem.handWritten("agentHello") }
    func enrollAgent(_ input: Operations.EnrollAgent.Input) async throws -> Operations.EnrollAgent.Output { throw Problem.handWritten("enrollAgent") }
    func enrollAgentSealed(_ input: Operations.EnrollAgentSealed.Input) async throws -> Operations.EnrollAgentSealed.Output { throw Problem.handWritten("enrollAgentSealed") }
    func agentSync(_ input: Operations.AgentSync.Input) async throws -> Operations.AgentSync.Output { throw Problem.handWritten("agentSync") }
    func agentLease(_ input: Operations.AgentLease.Input) async throws -> Operations.AgentLease.Output { throw Problem.handWritten("agentLease") }
}

extension Problem {
    static func handWritten(_ operation: String) -> Problem {
        Problem(.internalServerError, type: "internal", detail: "\(operation) is served by its hand-written route")
    }
}
