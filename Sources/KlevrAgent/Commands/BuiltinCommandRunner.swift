import Foundation
import KlevrAPI
import KlevrCore
import Logging

/// Runs the built-in commands of a run's steps (``BuiltinCommands``) on this agent: each returns a
/// JSON result, which the next step reads from `$KLEVR_PREVIOUS_RESULT_FILE`, or fails with a reason.
struct BuiltinCommandRunner: Sendable {
    /// How a command step ended.
    enum Outcome: Sendable, Equatable {
        /// Done; `endsRun` for a command after which no step runs (the agent stops).
        case succeeded(JSONValue, endsRun: Bool = false)
        case failed(String)
    }

    let agentID: String
    let zone: String
    let zoneID: String
    let maxRuns: Int
    let hasManagerRoute: Bool
    /// File commands refuse this directory (the agent's keys and credential) and what is in it.
    let stateDir: String
    let registry: RunRegistry
    let lifecycle: AgentLifecycle
    /// Nil when the process was not started with a changeable log (tests).
    let log: AgentLog?
    let startedAt: Int64
    let now: @Sendable () -> Int64
    let logger: Logger

    /// Runs `name` with `args` as a step of run `runID`. Never throws: what goes wrong is the reason.
    func run(_ name: String, args: JSONValue?, runID: String) async -> Outcome {
        guard let command = BuiltinCommands.named(name) else {
            return .failed("this agent (version \(HostFactsCollector.agentVersion)) does not know the command '\(LogValue.escape(name, limit: 64))'")
        }
        let problems = command.problems(with: args)
        if !problems.isEmpty {
            return .failed("wrong arguments for \(name): " + problems.map(\.description).joined(separator: "; "))
        }
        let arguments = command.arguments(args)
        logger.info("running a built-in command", metadata: ["run.id": "\(runID)", "command": "\(name)"])
        switch command.name {
        case .agentInfo: return await info(runID: runID)
        case .agentSetLogLevel: return setLogLevel(arguments)
        case .agentCollectLogs: return collectLogs(arguments)
        case .agentRunningRuns: return await runningRuns(except: runID)
        case .runStop: return await stopRun(arguments, runID: runID)
        case .agentRestart: return await restart(runID: runID)
        case .agentShutdown: return await shutdown(arguments, runID: runID)
        case .filePut: return FileCommands(stateDir: stateDir).put(arguments)
        case .fileGet: return FileCommands(stateDir: stateDir).get(arguments)
        case .hostFacts: return .succeeded(HostFactsCollector.details())
        }
    }

    private func info(runID: String) async -> Outcome {
        let facts = HostFactsCollector.collect()
        let held = await registry.all.count
        return .succeeded([
            "agentId": .string(agentID), "zone": .string(zone), "zoneId": .string(zoneID), "version": .string(HostFactsCollector.agentVersion),
            "hostname": .string(facts.hostname), "pid": .integer(Int64(ProcessInfo.processInfo.processIdentifier)), "startedAt": .integer(startedAt),
            "uptimeSeconds": .integer(max(0, (now() - startedAt) / 1000)), "logLevel": .string((log?.level ?? .info).rawValue),
            "maxRuns": .integer(Int64(maxRuns)), "runningRuns": .integer(Int64(max(0, held - 1))), "hasManagerRoute": .bool(hasManagerRoute),
        ])
    }

    private func setLogLevel(_ arguments: [String: JSONValue]) -> Outcome {
        guard let text = arguments["level"]?.stringValue, let level = Logger.Level(rawValue: text) else { return .failed("level: unknown log level") }
        guard let log else { return .failed("this agent process was not started with a log level that can change") }
        let before = log.setLevel(level)
        logger.notice("log level changed by a built-in command", metadata: ["before": "\(before)", "current": "\(level)"])
        return .succeeded(["before": .string(before.rawValue), "current": .string(level.rawValue)])
    }

    private func collectLogs(_ arguments: [String: JSONValue]) -> Outcome {
        guard let log else { return .failed("this agent process keeps no log lines in memory") }
        let count = Int(arguments["lines"]?.integerValue ?? 200)
        let recent = log.recent(count)
        return .succeeded([
            "source": "memory", "lines": .array(recent.lines.map { .string($0) }), "truncated": .bool(recent.truncated),
            "droppedBeforeStart": .bool(recent.dropped),
        ])
    }

    private func runningRuns(except runID: String) async -> Outcome {
        let runs = await registry.all.filter { $0.key != runID }.sorted { $0.key < $1.key }.map { id, entry -> JSONValue in
            ["runId": .string(id), "taskId": .string(entry.taskID), "state": entry.started ? "running" : "waiting", "since": .integer(entry.since)]
        }
        return .succeeded(["runs": .array(runs)])
    }

    private func stopRun(_ arguments: [String: JSONValue], runID: String) async -> Outcome {
        guard let target = arguments["runId"]?.stringValue else { return .failed("runId: is required") }
        if target == runID { return .failed("runId: a run cannot stop itself (cancel it instead)") }
        guard let control = await registry.control(target) else {
            return .succeeded(["runId": .string(target), "outcome": "not_running"])
        }
        await control.stop(.canceled)
        let seconds = arguments["timeoutSeconds"]?.integerValue ?? 60
        let ended = await waitUntil(seconds: seconds) { await !registry.holds(target) }
        return .succeeded(["runId": .string(target), "outcome": ended ? "stopped" : "still_running"])
    }

    private func restart(runID: String) async -> Outcome {
        let others = await registry.all.keys.filter { $0 != runID }.sorted()
        await lifecycle.requestExit(AgentExit(status: BuiltinCommands.restartExitStatus, reason: "restart asked by run \(runID) (agent.restart)"))
        await registry.stopAll(.shutdown, except: runID)
        return .succeeded(
            ["action": "restart", "exitStatus": .integer(Int64(BuiltinCommands.restartExitStatus)), "stoppedRuns": .array(others.map { .string($0) })],
            endsRun: true)
    }

    private func shutdown(_ arguments: [String: JSONValue], runID: String) async -> Outcome {
        let mode = arguments["mode"]?.stringValue ?? "graceful"
        let before = Set(await registry.all.keys.filter { $0 != runID })
        if mode == "graceful" {
            await lifecycle.drain()
            let seconds = arguments["timeoutSeconds"]?.integerValue ?? 300
            logger.notice("graceful shutdown: waiting for running runs", metadata: ["runs": "\(before.count)", "timeout.seconds": "\(seconds)"])
            _ = await waitUntil(seconds: seconds) { await registry.all.keys.allSatisfy { $0 == runID } }
            if Task.isCancelled {
                await lifecycle.resume()
                return .failed("the shutdown was canceled while it waited for running runs")
            }
        }
        let left = Set(await registry.all.keys.filter { $0 != runID })
        await lifecycle.requestExit(AgentExit(status: 0, reason: "\(mode) shutdown asked by run \(runID) (agent.shutdown)"))
        await registry.stopAll(.shutdown, except: runID)
        return .succeeded(
            [
                "mode": .string(mode), "finishedRuns": .array(before.subtracting(left).sorted().map { .string($0) }),
                "stoppedRuns": .array(left.sorted().map { .string($0) }),
            ], endsRun: true)
    }

    /// Polls `condition` until it holds, `seconds` pass or the task is cancelled; whether it held.
    private func waitUntil(seconds: Int64, _ condition: @Sendable () async -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while !Task.isCancelled {
            if await condition() { return true }
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }
}
