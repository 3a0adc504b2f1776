import ArgumentParser
import Foundation
import KlevrAPI

struct CredentialCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "credential", abstract: "Store secrets that tasks may use (values are write-only).",
        discussion: """
            A value is read from standard input (or --from-file), never from the command line, where other users could see it:
              printf '%s' "$DB_PASSWORD" | klevr credential create DB_PASSWORD --zone prod
            A task names the credentials it uses (klevr task run --credential DB_PASSWORD ...); its scripts read $KLEVR_CRED_DB_PASSWORD.
            """,
        subcommands: [List.self, Create.self, Show.self, Set.self, Delete.self])

    /// The value: the file's bytes, or standard input's; one trailing newline (an `echo`'s) is dropped.
    static func readValue(fromFile path: String?) throws -> String {
        let data: Data
        if let path {
            guard let contents = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
            data = contents
        } else {
            data = FileHandle.standardInput.readDataToEndOfFile()
        }
        guard var value = String(data: data, encoding: .utf8) else { throw ValidationError("the value is not UTF-8 text") }
        if value.hasSuffix("\r\n") { value.removeLast(1) } else if value.hasSuffix("\n") { value.removeLast() }
        guard !value.isEmpty else { throw ValidationError("the value is empty (give it on standard input or with --from-file)") }
        return value
    }

    static func row(_ credential: Components.Schemas.Credential) -> [String] {
        [
            credential.id, credential.name, credential.scope == .global ? "global" : "zone \(credential.zone ?? "?")", Printer.time(credential.updatedAt),
            credential.description,
        ]
    }

    static let header = ["ID", "NAME", "SCOPE", "UPDATED", "DESCRIPTION"]

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List credentials (never their values).")
        @Option(help: "This zone's own credentials (with --global too: what its tasks may use).") var zone: String?
        @Flag(help: "The global credentials.") var global = false
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let page = try await options.withClient { client in
                try await api { try await client.listCredentials(query: .init(zone: zone, global: global ? true : nil)).ok.body.json }
            }
            if options.output == .json { return try Printer.json(page.items) }
            Printer.table(CredentialCommand.header, page.items.map(CredentialCommand.row))
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Store a credential (admins); the value comes from standard input or --from-file.")
        @Argument(help: "Its name: letters, digits and '_' (scripts read $KLEVR_CRED_<NAME>).") var name: String
        @Option(help: "The zone whose tasks may use it.") var zone: String?
        @Flag(help: "A credential every zone's tasks may use.") var global = false
        @Option(help: "Read the value from this file instead of standard input.") var fromFile: String?
        @Option(help: "What it is for.") var description: String?
        @OptionGroup var options: ClientOptions

        func validate() throws {
            guard (zone != nil) != global else { throw ValidationError("give --zone ZONE or --global") }
        }

        func run() async throws {
            let value = try CredentialCommand.readValue(fromFile: fromFile)
            let credential = try await options.withClient { client in
                try await api {
                    try await client.createCredential(body: .json(.init(name: name, zone: zone, value: value, description: description))).created.body.json
                }
            }
            if options.output == .json { return try Printer.json(credential) }
            print("credential \(credential.name) stored (\(credential.scope == .global ? "global" : "zone \(zone ?? "")")), id \(credential.id)")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a credential (without its value).")
        @Argument var id: String
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let credential = try await options.withClient { client in
                try await api { try await client.getCredential(path: .init(id: id)).ok.body.json }
            }
            if options.output == .json { return try Printer.json(credential) }
            Printer.table(CredentialCommand.header, [CredentialCommand.row(credential)])
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace a credential's value (from standard input or --from-file) and/or its description (admins).")
        @Argument var id: String
        @Option(help: "Read the new value from this file.") var fromFile: String?
        @Flag(help: "Read the new value from standard input.") var valueStdin = false
        @Option(help: "A new description.") var description: String?
        @OptionGroup var options: ClientOptions

        func validate() throws {
            guard fromFile != nil || valueStdin || description != nil else {
                throw ValidationError("give --value-stdin, --from-file or --description")
            }
        }

        func run() async throws {
            let value = fromFile != nil || valueStdin ? try CredentialCommand.readValue(fromFile: fromFile) : nil
            let credential = try await options.withClient { client in
                try await api {
                    try await client.updateCredential(path: .init(id: id), body: .json(.init(value: value, description: description))).ok.body.json
                }
            }
            if options.output == .json { return try Printer.json(credential) }
            print("credential \(credential.name) updated")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a credential (admins; refused while a task with runs ahead names it).")
        @Argument var id: String
        @OptionGroup var options: ClientOptions
        func run() async throws {
            try await options.withClient { client in _ = try await api { try await client.deleteCredential(path: .init(id: id)).noContent } }
            print("deleted credential \(id)")
        }
    }
}
