import HTTPTypes
import KlevrAPI

/// The operations still served by their hand-written routes (`Manager+*Routes.swift`): their generated
/// handlers are not registered (see ``SelectedOperations``), so these bodies are never reached. Each
/// group leaves this file when its feature moves to the generated server.
extension ManagerAPI {
    // MARK: - The service itself

    func health(_ input: Operations.Health.Input) async throws -> Operations.Health.Output { throw Problem.handWritten("health") }
    func ready(_ input: Operations.Ready.Input) async throws -> Operations.Ready.Output { throw Problem.handWritten("ready") }
    func openapi(_ input: Operations.Openapi.Input) async throws -> Operations.Openapi.Output { throw Problem.handWritten("openapi") }

    // MARK: - Sessions, users and tokens

    func login(_ input: Operations.Login.Input) async throws -> Operations.Login.Output { throw Problem.handWritten("login") }
    func logout(_ input: Operations.Logout.Input) async throws -> Operations.Logout.Output { throw Problem.handWritten("logout") }
    func me(_ input: Operations.Me.Input) async throws -> Operations.Me.Output { throw Problem.handWritten("me") }
    func changePassword(_ input: Operations.ChangePassword.Input) async throws -> Operations.ChangePassword.Output { throw Problem.handWritten("changePassword") }
    func listUsers(_ input: Operations.ListUsers.Input) async throws -> Operations.ListUsers.Output { throw Problem.handWritten("listUsers") }
    func createUser(_ input: Operations.CreateUser.Input) async throws -> Operations.CreateUser.Output { throw Problem.handWritten("createUser") }
    func deleteUser(_ input: Operations.DeleteUser.Input) async throws -> Operations.DeleteUser.Output { throw Problem.handWritten("deleteUser") }
    func disableUser(_ input: Operations.DisableUser.Input) async throws -> Operations.DisableUser.Output { throw Problem.handWritten("disableUser") }
    func enableUser(_ input: Operations.EnableUser.Input) async throws -> Operations.EnableUser.Output { throw Problem.handWritten("enableUser") }
    func setUserRole(_ input: Operations.SetUserRole.Input) async throws -> Operations.SetUserRole.Output { throw Problem.handWritten("setUserRole") }
    func listTokens(_ input: Operations.ListTokens.Input) async throws -> Operations.ListTokens.Output { throw Problem.handWritten("listTokens") }
    func createToken(_ input: Operations.CreateToken.Input) async throws -> Operations.CreateToken.Output { throw Problem.handWritten("createToken") }
    func deleteToken(_ input: Operations.DeleteToken.Input) async throws -> Operations.DeleteToken.Output { throw Problem.handWritten("deleteToken") }

    // MARK: - Events and audit

    func listEvents(_ input: Operations.ListEvents.Input) async throws -> Operations.ListEvents.Output { throw Problem.handWritten("listEvents") }
    func auditLog(_ input: Operations.AuditLog.Input) async throws -> Operations.AuditLog.Output { throw Problem.handWritten("auditLog") }

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
