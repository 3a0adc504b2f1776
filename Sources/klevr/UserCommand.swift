import ArgumentParser
import Foundation
import KlevrAPI
import KlevrClient
import KlevrCore

#if canImport(Glibc)
import Glibc
#endif

extension Components.Schemas.Role: ExpressibleByArgument {}

struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Manage users (admins) and change your own password.",
        subcommands: [List.self, Create.self, Disable.self, Enable.self, Delete.self, SetRole.self, Passwd.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users.")
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let page = try await options.withClient { client in try await api { try await client.listUsers().ok.body.json } }
            if options.output == .json { return try Printer.json(page.items) }
            Printer.table(
                ["USER", "ROLE", "STATUS", "CREATED", "PASSWORD CHANGED"],
                page.items.map {
                    [
                        $0.username, $0.role.rawValue,
                        $0.disabledAt != nil ? "disabled" : ($0.passwordChangeRequired ? "must change password" : "enabled"),
                        Printer.time($0.createdAt), Printer.time($0.passwordChangedAt),
                    ]
                })
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a user (password: 12 to 72 characters, at most 72 bytes; from --password-stdin, KLEVR_NEW_PASSWORD or a prompt).")
        @Argument var username: String
        @Option(help: "viewer, operator or admin.") var role: Components.Schemas.Role = .viewer
        @Flag(help: "Read the new user's password from standard input.") var passwordStdin = false
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let login = try CLIConfig.load()
            let password = try PasswordInput.read(
                explicit: nil, environment: "KLEVR_NEW_PASSWORD", fromStdin: passwordStdin, prompt: "Password for the new user \(username): ")
            let user = try await login.withClient { client in
                try await api { try await client.createUser(body: .json(.init(username: username, password: password, role: role))).created.body.json }
            }
            if options.output == .json { try Printer.json(user) } else { print("created user \(user.username) (\(user.role.rawValue))") }
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a user: their sessions and tokens end at once.")
        @Argument var username: String
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let user = try await change(options) { client in try await client.disableUser(path: .init(username: username)).ok.body.json }
            if options.output == .json { try Printer.json(user) } else { print("disabled user \(user.username); their sessions and tokens have ended") }
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a disabled user again (they log in anew).")
        @Argument var username: String
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let user = try await change(options) { client in try await client.enableUser(path: .init(username: username)).ok.body.json }
            if options.output == .json { try Printer.json(user) } else { print("enabled user \(user.username)") }
        }
    }

    struct SetRole: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set-role", abstract: "Set a user's role.")
        @Argument var username: String
        @Argument(help: "viewer, operator or admin.") var role: Components.Schemas.Role
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let user = try await change(options) { client in
                try await client.setUserRole(path: .init(username: username), body: .json(.init(role: role))).ok.body.json
            }
            if options.output == .json { try Printer.json(user) } else { print("user \(user.username) is now \(user.role.rawValue)") }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a user and their tokens; what they created stays.")
        @Argument var username: String
        @OptionGroup var options: ClientOptions
        func run() async throws {
            try await options.withClient { client in _ = try await api { try await client.deleteUser(path: .init(username: username)).noContent } }
            print("deleted user \(username)")
        }
    }

    struct Passwd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change your own password, then save a new CLI token.",
            discussion: """
                A password change ends every other session and every API token of the user, the CLI's saved token
                included; this command logs in with the new password and saves a fresh token, so the CLI keeps working.
                It also works before the first login, when a generated password must be changed.
                Passwords come from KLEVR_PASSWORD and KLEVR_NEW_PASSWORD, from standard input (--passwords-stdin:
                the current one on the first line, the new one on the second), or from prompts.
                """)
        @Option(help: "Manager URL (default: the saved login's, else http://127.0.0.1:8090).") var server: String?
        @Option(help: "User name (default: the saved login's, else admin).") var username: String?
        @Flag(help: "Read the current and the new password from standard input, one per line.") var passwordsStdin = false

        func run() async throws {
            let saved = CLIConfig.loadIfPresent()
            let server = server ?? saved?.server ?? "http://127.0.0.1:8090"
            let username = username ?? saved?.username ?? "admin"
            let current = try PasswordInput.read(
                explicit: nil, environment: "KLEVR_PASSWORD", fromStdin: passwordsStdin, prompt: "Current password of \(username): ")
            let new = try PasswordInput.read(
                explicit: nil, environment: "KLEVR_NEW_PASSWORD", fromStdin: passwordsStdin, prompt: "New password: ")
            if !passwordsStdin && ProcessInfo.processInfo.environment["KLEVR_NEW_PASSWORD"] == nil && isatty(STDIN_FILENO) != 0 {
                let again = try PasswordInput.read(explicit: nil, environment: "", fromStdin: false, prompt: "New password again: ")
                guard again == new else { throw CLIError("the two new passwords differ; nothing was changed") }
            }
            // The saved login's certificate check applies to the same manager.
            let trust = saved?.server == server ? saved?.trust : nil
            try await SessionLogin.with(server: server, username: username, password: current, trust: trust) { session in
                _ = try await api {
                    try await session.client.changePassword(body: .json(.init(currentPassword: current, newPassword: new))).noContent
                }
                _ = try await session.saveCLIToken(expiresInDays: nil)
            }
            print("Password of \(username) changed. Every other session and API token of \(username) has ended; the CLI's token was renewed.")
        }
    }
}

/// Sends an admin change of one user and returns the user it answers with.
private func change(_ options: ClientOptions, _ call: (Client) async throws -> Components.Schemas.User) async throws -> Components.Schemas.User {
    try await options.withClient { client in try await api { try await call(client) } }
}
