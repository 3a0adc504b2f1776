import ArgumentParser
import Foundation
import KlevrAPI
import KlevrClient
import KlevrCore
import OpenAPIRuntime

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
            let status = try self.status.map { text in
                guard let status = Components.Schemas.RunStatus(rawValue: text) else {
                    throw ValidationError(
                        "--status must be one of \(Components.Schemas.RunStatus.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return status
            }
            try await options.withClient { client in
                let resolver = IDResolver(client: client)
                let task = try await self.task.asyncMap(resolver.task)
                let agent = try await self.agent.asyncMap(resolver.agent)
                let page = try await api {
                    try await client.listRuns(query: .init(task: task, agent: agent, zone: zone, status: status, limit: limit)).ok.body.json
                }
                if options.output == .json { return try Printer.json(page.items) }
                Printer.table(["ID", "TASK", "AGENT", "STATUS", "EXIT", "CREATED"], page.items.map {
                    [$0.id, String($0.taskId.prefix(8)), String($0.agentId.prefix(8)), $0.status.rawValue, $0.exitCode.map(String.init) ?? "-", Printer.time($0.createdAt)]
                })
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one run.")
        @Argument var id: String
        @OptionGroup var options: ClientOptions
        func run() async throws {
            try await options.withClient { client in
                let id = try await IDResolver(client: client).run(self.id)
                let run = try await api { try await client.getRun(path: .init(id: id)).ok.body.json }
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
    }

    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a run's output; -f follows it live until the run ends.")
        @Argument var id: String
        @Flag(name: .shortAndLong, help: "Follow the log (Server-Sent Events) until the run ends.") var follow = false
        @OptionGroup var options: ClientOptions
        func run() async throws {
            try await options.withClient { client in
                let id = try await IDResolver(client: client).run(self.id)
                if !follow {
                    // JSON only: the default `Accept` would name `text/event-stream` too, and the manager streams for it.
                    let page = try await api {
                        try await client.runLogs(path: .init(id: id), headers: .init(accept: [.init(contentType: .json)])).ok.body.json
                    }
                    if options.output == .json { return try Printer.json(page) }
                    for chunk in page.items { FileHandle.standardOutput.write(Data(chunk.data.utf8)) }
                    return
                }
                try await api { try await streamEvents(client, id: id) }
            }
        }

        /// Reads the SSE stream and prints each chunk as it arrives, until the run's `end` event.
        func streamEvents(_ client: Client, id: String) async throws {
            var failed = false
            try await EventStreamFollower().follow { lastSeq in
                try await RunLogStream.open(client, runID: id, after: lastSeq.flatMap { Int64($0) } ?? 0)
            } handle: { event in
                switch RunLogStream.Item(event) {
                case .log(let chunk, let data):
                    if options.output == .json { say(data) } else { FileHandle.standardOutput.write(Data(chunk.data.utf8)) }
                case .end(let run):
                    FileHandle.standardError.write(Data("run \(run.id) ended: \(run.status.rawValue)\(run.reason.map { " (\($0))" } ?? "")\n".utf8))
                    failed = run.status != .succeeded
                    return false
                case nil:
                    break
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
            try await options.withClient { client in
                let id = try await IDResolver(client: client).run(self.id)
                let run = try await api { try await client.cancelRun(path: .init(id: id)).ok.body.json }
                if options.output == .json { return try Printer.json(run) }
                print(run.status == .canceled ? "run \(run.id) canceled" : "cancel requested for run \(run.id) (\(run.status.rawValue))")
            }
        }
    }
}

/// A run's log as Server-Sent Events: `log` events (id: the chunk's seq), then one `end` event with
/// the finished run.
enum RunLogStream {
    /// What one event of the stream carries.
    enum Item {
        /// A chunk of output, and the event's data as it came.
        case log(Components.Schemas.LogChunk, data: String)
        /// The run ended.
        case end(Components.Schemas.Run)

        /// The item an event carries; nil for an event of another kind or with data that does not decode.
        init?(_ event: ServerSentEvent) {
            guard let data = event.data else { return nil }
            switch event.event {
            case "log":
                guard let chunk = try? JSONDecoder().decode(Components.Schemas.LogChunk.self, from: Data(data.utf8)) else { return nil }
                self = .log(chunk, data: data)
            case "end":
                guard let run = try? JSONDecoder().decode(Components.Schemas.Run.self, from: Data(data.utf8)) else { return nil }
                self = .end(run)
            default:
                return nil
            }
        }
    }

    /// Opens the stream of the chunks after seq `after`.
    static func open(_ client: Client, runID: String, after: Int64) async throws -> HTTPBody {
        try await client.runLogs(
            path: .init(id: runID), query: .init(after: after, follow: true), headers: .init(accept: [.init(contentType: .textEventStream)])
        ).ok.body.textEventStream
    }
}
