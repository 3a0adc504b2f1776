import ArgumentParser
import Foundation
import KlevrAgent
import KlevrCore
import Logging

@main
struct Klevr: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "klevr",
        abstract: "Manage machines in separated networks: a manager, agents in zones, tasks and runs.",
        subcommands: [
            UpCommand.self, ManagerCommand.self, AgentCommand.self, LoginCommand.self, UserCommand.self, TokenCommand.self, ZoneCommand.self,
            TaskCommand.self, RunCommand.self, CommandCommand.self, CredentialCommand.self, EventsCommand.self, AuditCommand.self, WebhookCommand.self,
            BenchCommand.self,
        ])
}

/// Logging setup, done once per process.
enum LogSetup {
    static func bootstrap(level: String?) {
        let parsed = level.flatMap(Logger.Level.init(rawValue:)) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = EscapingLogHandler(StreamLogHandler.standardError(label: label))
            handler.logLevel = parsed
            return handler
        }
    }
}

extension LogSetup {
    /// The agent's logging: standard error, at the level ``KlevrAgent/AgentLog`` holds (changeable while
    /// it runs), its recent lines kept for `agent.collect-logs`.
    static func bootstrap(agentLog: AgentLog) {
        LoggingSystem.bootstrap { label in
            AgentLogHandler(label: label, log: agentLog, inner: EscapingLogHandler(StreamLogHandler.standardError(label: label)))
        }
    }
}

/// A command-line failure with a message for the user (printed without a stack of types).
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Writes a line to standard output at once (long-running commands are often piped, where `print`
/// would sit in a buffer).
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}
