import ArgumentParser
import Foundation
import KlevrAPI

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "List, create and revoke API tokens (your own; admins: everyone's).",
        subcommands: [List.self, Create.self, Revoke.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List API tokens (never their values); * marks the CLI's own.")
        @Flag(help: "Everyone's tokens, with their owners (admins).") var all = false
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let login = try CLIConfig.load()
            let page = try await login.withClient { client in
                try await api { try await client.listTokens(query: .init(all: all ? true : nil)).ok.body.json }
            }
            let own = login.tokenId
            if options.output == .json { return try Printer.json(page.items) }
            Printer.table(
                ["ID", "NAME", "OWNER", "CREATED", "LAST USED", "EXPIRES"],
                page.items.map {
                    [
                        $0.id + ($0.id == own ? " *" : ""), $0.name, $0.owner, Printer.time($0.createdAt), Printer.time($0.lastUsedAt),
                        $0.expiresAt.map { Printer.time($0) } ?? "never",
                    ]
                })
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an API token for yourself (its value is shown once).")
        @Argument var name: String
        @Option(help: "Days until it expires (1 to 365; default: it does not expire).") var expiresIn: Int?
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let token = try await options.withClient { client in
                try await api { try await client.createToken(body: .json(.init(name: name, expiresInDays: expiresIn))).created.body.json }
            }
            if options.output == .json { return try Printer.json(token) }
            print("API token \(token.name) (shown once, keep it safe):")
            print(token.token)
            print("id: \(token.id)  expires: \(token.expiresAt.map { Printer.time($0) } ?? "never")")
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token (your own; admins: anyone's).")
        @Argument var id: String
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let login = try CLIConfig.load()
            try await login.withClient { client in _ = try await api { try await client.deleteToken(path: .init(id: id)).noContent } }
            if login.tokenId == id {
                print("revoked token \(id), the CLI's own: run 'klevr login' to log in again")
            } else {
                print("revoked token \(id)")
            }
        }
    }
}
