import AsyncHTTPClient
import ArgumentParser
import Foundation
import KlevrAPI
import KlevrAgent
import KlevrCore
import NIOCore
import NIOHTTP1

struct TaskCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "task", abstract: "Run tasks and look at them.", subcommands: [RunTask.self, List.self, Show.self, Cancel.self])

    struct RunTask: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Run a script on agents of a zone, print each agent's output, exit non-zero if any run failed.",
            discussion: "Example: klevr task run --zone local --all --param WHO=world -- 'uname -n; echo \"$KLEVR_PARAM_WHO\"'")
        @Option(help: "Zone of the target agents.") var zone: String
        @Option(help: "Run on this agent.") var agent: String?
        @Flag(help: "Run on one online agent of the zone.") var any = false
        @Flag(help: "Run on every agent of the zone.") var all = false
        @Option(help: "Seconds the whole run may take.") var timeout: Int?
        @Option(name: .customLong("param"), help: "A parameter NAME=VALUE (repeatable); the script reads $KLEVR_PARAM_NAME.")
        var params: [String] = []
        @Option(help: "Task name.") var name: String?
        @Flag(help: "Do not wait; print the task and return.") var detach = false
        @OptionGroup var options: ClientOptions
        @Argument(help: "The script, after --.") var script: [String]

        func validate() throws {
            let chosen = [agent != nil, any, all].filter { $0 }.count
            guard chosen == 1 else { throw ValidationError("choose exactly one of --agent ID, --any, --all") }
            guard !script.isEmpty else { throw ValidationError("give the script after --") }
        }

        func run() async throws {
            var parameters: [String: String] = [:]
            for param in params {
                guard let equals = param.firstIndex(of: "=") else { throw ValidationError("--param must be NAME=VALUE, got '\(param)'") }
                parameters[String(param[..<equals])] = String(param[param.index(after: equals)...])
            }
            let target = agent.map { TargetSpec(kind: .agent, agentId: $0) } ?? TargetSpec(kind: any ? .any : .all)
            let request = TaskCreateRequest(
                name: name, zone: zone, target: target, steps: [StepSpec(script: script.joined(separator: " "))],
                params: parameters.isEmpty ? nil : parameters, timeoutSeconds: timeout)
            let client = try options.client()
            let task = try await api { try await client.send(.POST, "/api/v1/tasks", body: request, as: TaskView.self) }
            if detach {
                if options.output == .json { return try Printer.json(task) }
                print("task \(task.id) created with \(task.runs.count) run(s)")
                return
            }
            let runs = try await RunWatcher(client: client, printOutput: options.output == .table).follow(task.runs)
            if options.output == .json { try Printer.json(runs) }
            let failed = runs.filter { $0.status != .succeeded }
            if options.output == .table {
                for run in runs {
                    let label = RunWatcher.label(run)
                    print("[\(label)] \(run.status.rawValue)\(run.reason.map { ": \($0)" } ?? "")")
                }
            }
            if !failed.isEmpty { throw ExitCode(1) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tasks, newest first.")
        @Option var zone: String?
        @Option var limit = 50
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let client = try options.client()
            var path = "/api/v1/tasks?limit=\(limit)"
            if let zone { path += "&zone=\(zone.urlPathEscaped)" }
            let page = try await api { try await client.send(.GET, path, as: Page<TaskView>.self) }
            if options.output == .json { return try Printer.json(page.items) }
            Printer.table(["ID", "ZONE", "TARGET", "CREATED", "NAME"], page.items.map {
                [$0.id, $0.zone, $0.target.kind.rawValue, Printer.time($0.createdAt), $0.name]
            })
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a task and its runs.")
        @Argument var id: String
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let client = try options.client()
            let id = try await IDResolver(client: client).task(self.id)
            let task = try await api { try await client.send(.GET, "/api/v1/tasks/\(id.urlPathEscaped)", as: TaskView.self) }
            if options.output == .json { return try Printer.json(task) }
            print("task \(task.id) \"\(task.name)\" zone \(task.zone) target \(task.target.kind.rawValue) by \(task.createdBy)")
            Printer.table(["RUN", "AGENT", "STATUS", "EXIT", "REASON"], task.runs.map {
                [$0.id, $0.agentId, $0.status.rawValue, $0.exitCode.map(String.init) ?? "-", $0.reason ?? ""]
            })
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel every unfinished run of a task.")
        @Argument var id: String
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let client = try options.client()
            let id = try await IDResolver(client: client).task(self.id)
            let task = try await api { try await client.send(.POST, "/api/v1/tasks/\(id.urlPathEscaped)/cancel", as: TaskView.self) }
            if options.output == .json { return try Printer.json(task) }
            print("cancel requested for task \(task.id)")
        }
    }
}

/// Follows runs until they end, printing their output with a prefix per agent.
struct RunWatcher {
    let client: JSONClient
    let printOutput: Bool

    static func label(_ run: RunView) -> String { String(run.agentId.prefix(8)) }

    /// What one run's stream delivers.
    enum Event: Sendable {
        case output(runID: String, text: String)
        case ended(RunView)
        case failed(String)
    }

    /// Follows every run's log stream (Server-Sent Events) at once, so that each run's output and end
    /// arrive as they are stored, without polling.
    func follow(_ initial: [RunView]) async throws -> [RunView] {
        var runs = initial
        guard !runs.isEmpty else { return runs }
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(
            idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: min(runs.count, 256) + 4)
        configuration.timeout.connect = .seconds(10)
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let (events, continuation) = AsyncStream<Event>.makeStream()
        let client = self.client
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for run in initial {
                    group.addTask {
                        do {
                            try await Self.stream(run, client: client, http: http, into: continuation)
                        } catch is CancellationError {
                        } catch {
                            continuation.yield(.failed("\(error)"))
                        }
                    }
                }
                var partial: [String: String] = [:]
                var ended: Set<String> = []
                for await event in events {
                    switch event {
                    case .output(let runID, let text):
                        if printOutput, let run = runs.first(where: { $0.id == runID }) { emit(text, for: run, partial: &partial) }
                    case .ended(let run):
                        if let index = runs.firstIndex(where: { $0.id == run.id }) { runs[index] = run }
                        if printOutput, let rest = partial.removeValue(forKey: run.id), !rest.isEmpty { print("[\(Self.label(run))] \(rest)") }
                        ended.insert(run.id)
                    case .failed(let reason):
                        throw CLIError(reason)
                    }
                    if ended.count == initial.count { break }
                }
                group.cancelAll()
            }
        } catch {
            continuation.finish()
            try? await http.shutdown()
            throw error
        }
        continuation.finish()
        try? await http.shutdown()
        return runs
    }

    /// Reads one run's stream until its `end` event, reconnecting (after the last seq seen) if it breaks.
    static func stream(_ run: RunView, client: JSONClient, http: HTTPClient, into continuation: AsyncStream<Event>.Continuation) async throws {
        var after: Int64 = 0
        var failures = 0
        while !Task.isCancelled {
            do {
                var request = HTTPClientRequest(url: client.baseURL + "/api/v1/runs/\(run.id)/logs?follow=true&after=\(after)")
                request.tlsConfiguration = client.tls
                if let bearer = client.bearer { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
                request.headers.add(name: "Accept", value: "text/event-stream")
                let response = try await http.execute(request, timeout: .hours(24))
                guard response.status == .ok else {
                    var body = try await response.body.collect(upTo: 1 << 20)
                    throw CLIError("the manager refused to stream run \(run.id): HTTP \(response.status.code) \(body.readString(length: body.readableBytes) ?? "")")
                }
                // Bytes until a whole event arrived: a character split across reads is decoded whole.
                var pending: [UInt8] = []
                for try await buffer in response.body {
                    pending += buffer.readableBytesView
                    while let end = Self.eventEnd(in: pending) {
                        let event = String(decoding: pending[..<end], as: UTF8.self)
                        pending.removeFirst(end + 2)
                        var name = "message"
                        var data = ""
                        for line in event.split(separator: "\n") {
                            if line.hasPrefix("event: ") { name = String(line.dropFirst(7)) }
                            if line.hasPrefix("data: ") { data = String(line.dropFirst(6)) }
                        }
                        if name == "log", let chunk = try? JSONDecoder().decode(LogChunkView.self, from: Data(data.utf8)) {
                            after = max(after, chunk.seq)
                            continuation.yield(.output(runID: run.id, text: chunk.data))
                        } else if name == "end", let ended = try? JSONDecoder().decode(RunView.self, from: Data(data.utf8)) {
                            continuation.yield(.ended(ended))
                            return
                        }
                    }
                }
                // The stream closed without its end event: try again, a bounded number of times.
                failures += 1
                if failures > 20 { throw CLIError("the log stream of run \(run.id) kept closing before the run ended") }
                try await Task.sleep(for: .milliseconds(200 * min(failures, 10)))
            } catch let error as CLIError {
                throw error
            } catch {
                failures += 1
                if failures > 20 { throw error }
                try await Task.sleep(for: .milliseconds(200 * min(failures, 10)))
            }
        }
    }

    /// Where the first blank line (`\n\n`, the end of an event) starts, if any.
    static func eventEnd(in bytes: [UInt8]) -> Int? {
        guard bytes.count >= 2 else { return nil }
        for index in 0..<(bytes.count - 1) where bytes[index] == 10 && bytes[index + 1] == 10 { return index }
        return nil
    }

    private func emit(_ text: String, for run: RunView, partial: inout [String: String]) {
        var buffer = (partial[run.id] ?? "") + text
        while let newline = buffer.firstIndex(of: "\n") {
            print("[\(Self.label(run))] \(buffer[..<newline])")
            buffer = String(buffer[buffer.index(after: newline)...])
        }
        partial[run.id] = buffer
    }
}
