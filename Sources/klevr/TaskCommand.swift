import ArgumentParser
import Foundation
import KlevrAPI
import KlevrClient
import KlevrCore
import OpenAPIRuntime

struct TaskCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "task", abstract: "Run tasks and look at them.", subcommands: [RunTask.self, Create.self, List.self, Show.self, Cancel.self, Pause.self, Resume.self])

    /// Prints a callback URL's signing secret, which is in the creation answer only (docs/webhooks.md): with
    /// the table output; on standard error when JSON output follows the runs (the JSON is the runs then);
    /// with JSON output that prints the task, the secret is in it.
    static func showCallbackSecret(_ task: Components.Schemas.Task, output: OutputFormat, followed: Bool) {
        guard let secret = task.callbackSecret else { return }
        let line = "callback \(task.callbackUrl ?? "") signing secret (shown once): \(secret)\n"
        if output == .table {
            print(line, terminator: "")
        } else if followed {
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    struct RunTask: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Run a script on agents of a zone, print each agent's output, exit non-zero if any run failed.",
            discussion: """
                Example: klevr task run --zone local --all --param WHO=world -- 'uname -n; echo "$KLEVR_PARAM_WHO"'
                A built-in command: klevr task run --zone local --all --command agent.set-log-level --args '{"level": "debug"}'
                Later: --at 2026-12-01T03:00:00Z (or +15m). Recurring: --cron '*/15 * * * *' --tz Europe/Berlin (the command
                prints the task and its next fire times and returns). Times are RFC 3339 or +90s, +15m, +2h, +1d.
                """)
        @Option(help: "Zone of the target agents.") var zone: String
        @Option(help: "Run on this agent.") var agent: String?
        @Flag(help: "Run on one online agent of the zone.") var any = false
        @Flag(help: "Run on every agent of the zone.") var all = false
        @Option(help: "Run on every agent whose labels match this selector (env=prod,role!=db), in the zone or with --all-zones in every zone.")
        var selector: String?
        @Flag(help: "With --selector: agents of every zone match, not only --zone's (the task stays in --zone).") var allZones = false
        @Option(help: "At most this many runs at once (a count or a percentage of the agents, like 2 or 10%).") var maxConcurrency: String?
        @Option(help: "Stop the rollout when more runs than this failed (a count or a percentage); runs not started end canceled.")
        var maxErrors: String?
        @Option(help: "Seconds the whole run may take.") var timeout: Int?
        @Option(name: .customLong("param"), help: "A parameter NAME=VALUE (repeatable); the script reads $KLEVR_PARAM_NAME.")
        var params: [String] = []
        @Option(help: "Task name.") var name: String?
        @Flag(help: "Do not wait; print the task and return.") var detach = false
        @Option(help: "Run at this time instead of now (RFC 3339, or +90s, +15m, +2h, +1d).") var at: String?
        @Option(help: "A run not started within this many seconds of being due ends expired and never runs.") var deliverWithin: Int?
        @Option(help: "Run on this cron schedule (5 fields) instead of once.") var cron: String?
        @Option(help: "The IANA time zone of --cron (default UTC).") var tz: String?
        @Option(help: "No occurrence of --cron after this time (RFC 3339, or +2h ...).") var until: String?
        @Option(help: "At most this many occurrences of --cron.") var maxOccurrences: Int?
        @Option(help: "While a run of the task has not ended, an occurrence is skipped (skip, default) or fires anyway (queue).")
        var overlap: String?
        @Option(help: "After manager downtime: none (default), latest, or all missed occurrences.") var catchUp: String?
        @Option(help: "Run this built-in command instead of a script (see 'klevr command list').") var command: String?
        @Option(help: "The built-in command's arguments, a JSON object (with --command).") var args: String?
        @Option(name: .customLong("credential"), help: "A credential the runs receive (repeatable); the script reads $KLEVR_CRED_<NAME>.")
        var credentials: [String] = []
        @Option(help: "Deliver the task's run events to this URL, signed like a webhook (its secret is printed once; docs/webhooks.md).")
        var callbackUrl: String?
        @OptionGroup var options: ClientOptions
        @Argument(help: "The script, after --.") var script: [String] = []

        func validate() throws {
            let chosen = [agent != nil, any, all, selector != nil].filter { $0 }.count
            guard chosen == 1 else { throw ValidationError("choose exactly one of --agent ID, --any, --all, --selector") }
            if allZones && selector == nil { throw ValidationError("--all-zones goes with --selector") }
            if let selector {
                do { _ = try LabelSelector(selector) } catch { throw ValidationError("--selector: \(error)") }
            }
            do {
                _ = try RolloutPolicy(maxConcurrency: maxConcurrency, maxErrors: maxErrors)
            } catch {
                throw ValidationError("--\(error.field == "maxErrors" ? "max-errors" : "max-concurrency"): \(error.message)")
            }
            if command != nil && !script.isEmpty { throw ValidationError("give --command or a script after --, not both") }
            guard command != nil || !script.isEmpty else { throw ValidationError("give the script after --, or --command NAME") }
            if args != nil && command == nil { throw ValidationError("--args goes with --command") }
            if at != nil && cron != nil { throw ValidationError("give --at or --cron, not both") }
            if cron == nil && (tz != nil || until != nil || maxOccurrences != nil || overlap != nil || catchUp != nil) {
                throw ValidationError("--tz, --until, --max-occurrences, --overlap and --catch-up go with --cron")
            }
            if let overlap, !["skip", "queue"].contains(overlap) { throw ValidationError("--overlap is skip or queue") }
            if let catchUp, !["none", "latest", "all"].contains(catchUp) { throw ValidationError("--catch-up is none, latest or all") }
        }

        /// The schedule the options ask for, if any.
        func schedule() throws -> Components.Schemas.Recurrence? {
            guard let cron else { return nil }
            return .init(
                cron: cron, timeZone: tz, until: try until.map { try TimeArgument.millis($0, option: "--until") }, maxOccurrences: maxOccurrences,
                overlap: overlap.flatMap { .init(rawValue: $0) }, catchUp: catchUp.flatMap { .init(rawValue: $0) })
        }

        func run() async throws {
            var parameters: [String: String] = [:]
            for param in params {
                guard let equals = param.firstIndex(of: "=") else { throw ValidationError("--param must be NAME=VALUE, got '\(param)'") }
                parameters[String(param[..<equals])] = String(param[param.index(after: equals)...])
            }
            let target =
                agent.map { Components.Schemas.Target.agent($0) } ?? selector.map { .matching($0, allZones: allZones) }
                ?? (any ? .anyOnlineAgent : .everyAgent)
            var step = Components.Schemas.Step(script: script.joined(separator: " "))
            if let command {
                do {
                    step = .init(command: command, args: try args.map { try JSONDecoder().decode(OpenAPIObjectContainer.self, from: Data($0.utf8)) })
                } catch {
                    throw ValidationError("--args must be a JSON object, like '{\"level\": \"debug\"}'")
                }
            }
            let request = Components.Schemas.TaskCreateRequest(
                name: name, zone: zone, target: target, steps: [step],
                params: parameters.isEmpty ? nil : .init(additionalProperties: parameters), timeoutSeconds: timeout,
                runAt: try at.map { try TimeArgument.millis($0, option: "--at") }, deliverWithinSeconds: deliverWithin, schedule: try schedule(),
                rollout: maxConcurrency == nil && maxErrors == nil ? nil : .init(maxConcurrency: maxConcurrency, maxErrors: maxErrors),
                credentials: credentials.isEmpty ? nil : credentials, callbackUrl: callbackUrl)
            let runs = try await options.withClient { client -> [Components.Schemas.Run]? in
                let task = try await api { try await client.createTask(body: .json(request)).created.body.json }
                TaskCommand.showCallbackSecret(task, output: options.output, followed: !detach && task.schedule == nil)
                // A recurring task has no run yet: it is shown with its next fire times.
                if detach || task.schedule != nil {
                    if options.output == .json {
                        try Printer.json(task)
                    } else if let schedule = task.schedule {
                        print("task \(task.id) created: \(Show.describe(schedule))")
                    } else {
                        print("task \(task.id) created with \(task.runs.count) run(s)")
                    }
                    return nil
                }
                return try await RunWatcher(client: client, printOutput: options.output == .table).follow(task.runs)
            }
            guard let runs else { return }
            if options.output == .json { try Printer.json(runs) }
            let failed = runs.filter { $0.status != .succeeded }
            if options.output == .table {
                for run in runs {
                    let label = RunWatcher.label(run)
                    print("[\(label)] \(run.status.rawValue)\(run.reason.map { ": \($0)" } ?? "")")
                    // A command writes no output: its result is what it did.
                    if command != nil, let result = run.result { print(result) }
                }
            }
            if !failed.isEmpty { throw ExitCode(1) }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a task from a file: the API's TaskCreateRequest as YAML or JSON (docs/tasks.md has a complete example).",
            discussion: """
                klevr task create -f task.yaml          # prints the task (and its next fire times if recurring)
                klevr task create -f task.yaml --wait   # then follows its runs like 'task run', non-zero if one failed
                A misspelt top-level field is an error; the manager checks the rest as for any request (422 naming the field).
                """)
        @Option(name: [.customShort("f"), .customLong("file")], help: "The task file ('-' for standard input).") var file: String
        @Flag(help: "Follow the runs to their end, printing their output.") var wait = false
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let request = try TaskFile.load(file)
            let runs = try await options.withClient { client -> [Components.Schemas.Run]? in
                let task = try await api { try await client.createTask(body: .json(request)).created.body.json }
                TaskCommand.showCallbackSecret(task, output: options.output, followed: wait && task.schedule == nil)
                if !wait || task.schedule != nil {
                    if options.output == .json {
                        try Printer.json(task)
                    } else if let schedule = task.schedule {
                        print("task \(task.id) created: \(Show.describe(schedule))")
                    } else {
                        print("task \(task.id) created with \(task.runs.count) run(s)")
                        for run in task.runs { print("  run \(run.id) on \(run.agentId): \(run.status.rawValue)") }
                    }
                    return nil
                }
                return try await RunWatcher(client: client, printOutput: options.output == .table).follow(task.runs)
            }
            guard let runs else { return }
            if options.output == .json { try Printer.json(runs) }
            if options.output == .table {
                for run in runs { print("[\(RunWatcher.label(run))] \(run.status.rawValue)\(run.reason.map { ": \($0)" } ?? "")") }
            }
            if runs.contains(where: { $0.status != .succeeded }) { throw ExitCode(1) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tasks, newest first.")
        @Option var zone: String?
        @Option var limit = 50
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let page = try await options.withClient { client in
                try await api { try await client.listTasks(query: .init(zone: zone, limit: limit)).ok.body.json }
            }
            if options.output == .json { return try Printer.json(page.items) }
            Printer.table(["ID", "ZONE", "TARGET", "CREATED", "NAME"], page.items.map {
                [$0.id, $0.zone, $0.target.kindName, Printer.time($0.createdAt), $0.name]
            })
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a task and its runs.")
        @Argument var id: String
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let task = try await options.withClient { client in
                let id = try await IDResolver(client: client).task(self.id)
                return try await api { try await client.getTask(path: .init(id: id)).ok.body.json }
            }
            if options.output == .json { return try Printer.json(task) }
            print("task \(task.id) \"\(task.name)\" zone \(task.zone) target \(task.target.kindName) by \(task.createdBy)")
            if let selector = task.target.selectorText { print("selector \(selector)") }
            if let rollout = task.rollout {
                print("rollout: at most \(rollout.maxConcurrency ?? "all") at once, stops after more than \(rollout.maxErrors ?? "any number of") errors")
            }
            if let schedule = task.schedule { print(Self.describe(schedule)) }
            if let runAt = task.runAt { print("runs at \(Printer.time(runAt))") }
            if let within = task.deliverWithinSeconds { print("each run must start within \(within) s of being due, or it expires") }
            Printer.table(["RUN", "AGENT", "STATUS", "EXIT", "REASON"], task.runs.map {
                [$0.id, $0.agentId, $0.status.rawValue, $0.exitCode.map(String.init) ?? "-", $0.reason ?? ""]
            })
        }

        /// `cron '…' in ZONE, fired N, next: …` (or paused, or finished).
        static func describe(_ schedule: Components.Schemas.RecurrenceState) -> String {
            let state =
                schedule.paused
                ? "paused" : schedule.nextFireTimes.isEmpty ? "finished" : "next: " + schedule.nextFireTimes.map { Printer.time($0) }.joined(separator: ", ")
            return "cron '\(schedule.cron)' in \(schedule.timeZone), overlap \(schedule.overlap.rawValue), fired \(schedule.firedCount); \(state)"
        }
    }

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pause a recurring task: no occurrence fires until it is resumed.")
        @Argument var id: String
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let task = try await options.withClient { client in
                let id = try await IDResolver(client: client).task(self.id)
                return try await api { try await client.pauseTask(path: .init(id: id)).ok.body.json }
            }
            if options.output == .json { return try Printer.json(task) }
            print("task \(task.id) paused")
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Resume a paused recurring task from now.")
        @Argument var id: String
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let task = try await options.withClient { client in
                let id = try await IDResolver(client: client).task(self.id)
                return try await api { try await client.resumeTask(path: .init(id: id)).ok.body.json }
            }
            if options.output == .json { return try Printer.json(task) }
            print("task \(task.id) resumed: \(task.schedule.map(Show.describe) ?? "")")
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel every unfinished run of a task.")
        @Argument var id: String
        @OptionGroup var options: ClientOptions
        func run() async throws {
            let task = try await options.withClient { client in
                let id = try await IDResolver(client: client).task(self.id)
                return try await api { try await client.cancelTask(path: .init(id: id)).ok.body.json }
            }
            if options.output == .json { return try Printer.json(task) }
            print("cancel requested for task \(task.id)")
        }
    }
}

/// Follows runs until they end, printing their output with a prefix per agent.
struct RunWatcher {
    let client: Client
    let printOutput: Bool

    static func label(_ run: Components.Schemas.Run) -> String { String(run.agentId.prefix(8)) }

    /// What one run's stream delivers.
    enum Event: Sendable {
        case output(runID: String, text: String)
        case ended(Components.Schemas.Run)
        case failed(String)
    }

    /// Follows every run's log stream (Server-Sent Events) at once, so that each run's output and end
    /// arrive as they are stored, without polling.
    func follow(_ initial: [Components.Schemas.Run]) async throws -> [Components.Schemas.Run] {
        var runs = initial
        guard !runs.isEmpty else { return runs }
        let (events, continuation) = AsyncStream<Event>.makeStream()
        let client = self.client
        defer { continuation.finish() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for run in initial {
                group.addTask {
                    do {
                        try await Self.stream(run, client: client, into: continuation)
                    } catch is CancellationError {
                    } catch {
                        continuation.yield(.failed(Self.describe(ManagerClient.cause(of: error), run: run)))
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
        return runs
    }

    /// Reads one run's stream until its `end` event, reconnecting (after the last seq seen) if it breaks.
    static func stream(_ run: Components.Schemas.Run, client: Client, into continuation: AsyncStream<Event>.Continuation) async throws {
        try await EventStreamFollower().follow { lastSeq in
            try await RunLogStream.open(client, runID: run.id, after: lastSeq.flatMap { Int64($0) } ?? 0)
        } handle: { event in
            switch RunLogStream.Item(event) {
            case .log(let chunk, _):
                continuation.yield(.output(runID: run.id, text: chunk.data))
            case .end(let ended):
                continuation.yield(.ended(ended))
                return false
            case nil:
                break
            }
            return true
        }
    }

    /// Why following a run's stream failed, for the user.
    static func describe(_ error: any Error, run: Components.Schemas.Run) -> String {
        if let refusal = error as? ManagerRefusal { return "the manager refused to stream run \(run.id): \(refusal)" }
        return "\(userFacing(error))"
    }

    private func emit(_ text: String, for run: Components.Schemas.Run, partial: inout [String: String]) {
        var buffer = (partial[run.id] ?? "") + text
        while let newline = buffer.firstIndex(of: "\n") {
            print("[\(Self.label(run))] \(buffer[..<newline])")
            buffer = String(buffer[buffer.index(after: newline)...])
        }
        partial[run.id] = buffer
    }
}
