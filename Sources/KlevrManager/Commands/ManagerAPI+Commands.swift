import Foundation
import KlevrAPI
import KlevrCore
import OpenAPIRuntime

/// The registry of built-in commands (``BuiltinCommands``), with their parameter and result schemas.
extension ManagerAPI {
    func listCommands(_ input: Operations.ListCommands.Input) async throws -> Operations.ListCommands.Output {
        _ = try context.requireUser()
        let items = try BuiltinCommands.all.map { command in
            Components.Schemas.CommandDescription(
                name: command.name.rawValue, description: command.description, parameters: try Self.container(command.parameterSchema),
                result: try Self.container(command.resultSchema))
        }
        return .ok(.init(body: .json(.init(items: items))))
    }

    /// A JSON object as the generated types carry one.
    static func container(_ value: JSONValue) throws -> OpenAPIObjectContainer {
        try JSONDecoder().decode(OpenAPIObjectContainer.self, from: JSONEncoder().encode(value))
    }
}
