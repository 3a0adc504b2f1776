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
}

extension Problem {
    static func handWritten(_ operation: String) -> Problem {
        Problem(.internalServerError, type: "internal", detail: "\(operation) is served by its hand-written route")
    }
}
