import ArgumentParser
import AsyncHTTPClient
import Foundation
import KlevrAPI
import KlevrAgent
import KlevrCore
import NIOCore
import NIOHTTP1

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Look at runs, follow their logs, cancel them.", subcommands: [List.self, Show.self, Logs.self, Cancel.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List runs, newest first.")
        @Option var task: String?
        @Option var agent: String?
        @Option var zone: String?
        @Option var status: String?
        @Option var limit = 50
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let client = try options.client()
            var path = "/api/v1/runs?limit=\(limit)"
            let resolver = IDResolver(client: client)
            let task = try await self.task.asyncMap(resolver.task)
            let agent = try await self.agent.asyncMap(resolver.agent)
            for (name, value) in [("task", task), ("agent", agent), ("zone", zone), ("status", status)] {
                if let value { path += "&\(name)=\(value.urlPathEscaped)" }
            }
            let page = try await api { try await client.send(.GET, path, as: Page<RunView>.self) }
            if options.output == .json { return try Printer.json(page.items) }
            Printer.table(["ID", "TASK", "AGENT", "STATUS", "EXIT", "CREATED"], page.items.map {
                [$0.id, String($0.taskId.prefix(8)), String($0.agentId.prefix(8)), $0.status.rawValue, $0.exitCode.map(String.init) ?? "-", Printer.time($0.createdAt)]
            })
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one run.")
        @Argument var id: String
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let client = try options.client()
            let id = try await IDResolver(client: client).run(self.id)
            let run = try await api { try await client.send(.GET, "/api/v1/runs/\(id.urlPathEscaped)", as: RunView.self) }
            if options.output == .json { return try Printer.json(run) }
            for (name, value) in [
                ("id", run.id), ("task", run.taskId), ("agent", run.agentId), ("zone", run.zone), ("status", run.status.rawValue),
                ("reason", run.reason ?? "-"), ("exit code", run.exitCode.map(String.init) ?? "-"), ("created", Printer.time(run.createdAt)),
                ("started", Printer.time(run.startedAt)), ("finished", Printer.time(run.finishedAt)), ("result", run.result ?? "-"),
            ] {
                print("\(name.padding(toLength: 10, withPad: " ", startingAt: 0)) \(value)")
            }
        }
    }

    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a run's output; -f follows it live until the run ends.")
        @Argument var id: String
        @Flag(name: .shortAndLong, help: "Follow the log (Server-Sent Events) until the run ends.") var follow = false
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let client = try options.client()
            let id = try await IDResolver(client: client).run(self.id)
            if !follow {
                let page = try await api { try await client.send(.GET, "/api/v1/runs/\(id.urlPathEscaped)/logs", as: LogPage.self) }
                if options.output == .json { return try Printer.json(page) }
                for chunk in page.items { FileHandle.standardOutput.write(Data(chunk.data.utf8)) }
                return
            }
            try await api { try await streamEvents(client, id: id) }
        }

        /// Reads the SSE stream and prints each chunk as it arrives, until the run's `end` event.
        func streamEvents(_ client: JSONClient, id: String) async throws {
            var failed = false
            try await followStream(client, path: "/api/v1/runs/\(id.urlPathEscaped)/logs?follow=true") { name, data in
                if name == "log", let chunk = try? JSONDecoder().decode(LogChunkView.self, from: Data(data.utf8)) {
                    if options.output == .json { print(data) } else { FileHandle.standardOutput.write(Data(chunk.data.utf8)) }
                } else if name == "end", let run = try? JSONDecoder().decode(RunView.self, from: Data(data.utf8)) {
                    FileHandle.standardError.write(Data("run \(run.id) ended: \(run.status.rawValue)\(run.reason.map { " (\($0))" } ?? "")\n".utf8))
                    failed = run.status != .succeeded
                    return false
                }
                return true
            }
            if failed { throw ExitCode(1) }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a run (a running one is killed on its agent).")
        @Argument var id: String
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let client = try options.client()
            let id = try await IDResolver(client: client).run(self.id)
            let run = try await api { try await client.send(.POST, "/api/v1/runs/\(id.urlPathEscaped)/cancel", as: RunView.self) }
            if options.output == .json { return try Printer.json(run) }
            print(run.status == .canceled ? "run \(run.id) canceled" : "cancel requested for run \(run.id) (\(run.status.rawValue))")
        }
    }
}
