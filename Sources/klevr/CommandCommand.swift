import ArgumentParser
import Foundation
import KlevrAPI
import KlevrClient
import KlevrCore
import OpenAPIRuntime

/// `klevr command list`: the built-in commands a task step can run, as the manager describes them.
struct CommandCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "command", abstract: "The built-in commands task steps can run.", subcommands: [List.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the built-in commands with their parameters (json: with the parameter and result JSON schemas).")
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let list = try await options.withClient { client in
                try await api { try await client.listCommands().ok.body.json }
            }
            if options.output == .json { return try Printer.json(list.items) }
            Printer.table(["NAME", "PARAMETERS", "DESCRIPTION"], list.items.map { [$0.name, Self.parameters($0.parameters), $0.description] })
        }

        /// `name* level` style: the parameter names, required ones starred.
        static func parameters(_ schema: OpenAPIObjectContainer) -> String {
            guard let data = try? JSONEncoder().encode(schema), let value = try? JSONDecoder().decode(JSONValue.self, from: data),
                case .object(let properties)? = value["properties"]
            else { return "-" }
            var required: Set<String> = []
            if case .array(let names)? = value["required"] { required = Set(names.compactMap(\.stringValue)) }
            let names = properties.keys.sorted().map { required.contains($0) ? $0 + "*" : $0 }
            return names.isEmpty ? "-" : names.joined(separator: " ")
        }
    }
}
