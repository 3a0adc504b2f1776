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

    // MARK: - Agents: the operator API

    func listAgents(_ input: Operations.ListAgents.Input) async throws -> Operations.ListAgents.Output { throw Problem.handWritten("listAgents") }
    func getAgent(_ input: Operations.GetAgent.Input) async throws -> Operations.GetAgent.Output { throw Problem.handWritten("getAgent") }
    func retireAgent(_ input: Operations.RetireAgent.Input) async throws -> Operations.RetireAgent.Output { throw Problem.handWritten("retireAgent") }

    // MARK: - Tasks and runs

    func listTasks(_ input: Operations.ListTasks.Input) async throws -> Operations.ListTasks.Output { throw Problem.handWritten("listTasks") }
    func createTask(_ input: Operations.CreateTask.Input) async throws -> Operations.CreateTask.Output { throw Problem.handWritten("createTask") }
    func getTask(_ input: Operations.GetTask.Input) async throws -> Operations.GetTask.Output { throw Problem.handWritten("getTask") }
    func cancelTask(_ input: Operations.CancelTask.Input) async throws -> Operations.CancelTask.Output { throw Problem.handWritten("cancelTask") }
    func listRuns(_ input: Operations.ListRuns.Input) async throws -> Operations.ListRuns.Output { throw Problem.handWritten("listRuns") }
    func getRun(_ input: Operations.GetRun.Input) async throws -> Operations.GetRun.Output { throw Problem.handWritten("getRun") }
    func cancelRun(_ input: Operations.CancelRun.Input) async throws -> Operations.CancelRun.Output { throw Problem.handWritten("cancelRun") }
    func runLogs(_ input: Operations.RunLogs.Input) async throws -> Operations.RunLogs.Output { throw Problem.handWritten("runLogs") }
}

extension Problem {
    static func handWritten(_ operation: String) -> Problem {
        Problem(.internalServerError, type: "internal", detail: "\(operation) is served by its hand-written route")
    }
}
