/// The registry of built-in commands, shared by the manager (which checks a step's `args` and serves
/// the registry at `GET /api/v1/commands`) and the agent (which runs them).
public enum BuiltinCommands {
    /// The most `file.put` writes (decoded bytes): its content travels in the task and the signed envelope.
    public static let maxPutBytes = 512 * 1024
    /// The most `file.get` returns (bytes): base64 and the rest of the result stay within a run result's 64 KiB.
    public static let maxGetBytes = 45 * 1024
    /// The most `agent.collect-logs` returns (bytes of log lines), within a run result's 64 KiB.
    public static let maxLogBytes = 48 * 1024
    /// How many recent log lines an agent keeps in memory for `agent.collect-logs`.
    public static let logRingLines = 2000
    /// The exit status of an agent that `agent.restart` stopped: a supervisor (systemd's
    /// `Restart=on-failure`, `klevr up`) starts it again.
    public static let restartExitStatus: Int32 = 75
    /// Log levels, as `--log-level` takes them.
    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// Every built-in command, by name.
    public static let all: [BuiltinCommand] = [
        BuiltinCommand(
            name: .agentInfo, description: "The agent's identity, version, zone, log level, limits and what it runs now.", parameters: [],
            resultSchema: object(
                [
                    "agentId": string, "zone": string, "zoneId": string, "version": string, "hostname": string, "pid": integer,
                    "startedAt": integer, "uptimeSeconds": integer, "logLevel": string, "maxRuns": integer, "runningRuns": integer,
                    "hasManagerRoute": boolean,
                ])),
        BuiltinCommand(
            name: .agentSetLogLevel, description: "Changes the agent's log level until it restarts (then --log-level applies again).",
            parameters: [CommandParameter("level", .string(maxLength: 16, allowed: logLevels), required: true, "The new level.")],
            resultSchema: object(["before": string, "current": string])),
        BuiltinCommand(
            name: .agentCollectLogs,
            description:
                "The agent's most recent log lines, oldest first. The agent logs to standard error; it keeps the last \(logRingLines) lines in memory for this command (at most \(maxLogBytes / 1024) KiB are returned).",
            parameters: [CommandParameter("lines", .integer(min: 1, max: Int64(logRingLines)), default: 200, "How many of the newest lines.")],
            resultSchema: object(
                ["source": string, "lines": ["type": "array", "items": string], "truncated": boolean, "droppedBeforeStart": boolean])),
        BuiltinCommand(
            name: .agentRunningRuns, description: "The other runs this agent executes or holds waiting for a slot (--max-runs).", parameters: [],
            resultSchema: object([
                "runs": [
                    "type": "array",
                    "items": object(["runId": string, "taskId": string, "state": ["type": "string", "enum": ["running", "waiting"]], "since": integer]),
                ]
            ])),
        BuiltinCommand(
            name: .runStop,
            description:
                "Stops another run on this agent as a cancel does (its process group gets SIGTERM, then SIGKILL); the stopped run ends `canceled`. Waits up to timeoutSeconds for it to end.",
            parameters: [
                CommandParameter("runId", .runID, required: true, "The run to stop; it must be on this agent."),
                CommandParameter("timeoutSeconds", .integer(min: 1, max: 3600), default: 60, "How long to wait for the run to end."),
            ],
            resultSchema: object(["runId": string, "outcome": ["type": "string", "enum": ["stopped", "not_running", "still_running"]]])),
        BuiltinCommand(
            name: .agentRestart,
            description:
                "Reports this step's result, then stops the agent with exit status \(restartExitStatus) so that its supervisor (systemd, klevr up) starts it again. Other runs are stopped as at a shutdown and reported failed. Steps after this one do not run.",
            parameters: [],
            resultSchema: object(["action": string, "exitStatus": integer, "stoppedRuns": ["type": "array", "items": string]])),
        BuiltinCommand(
            name: .agentShutdown,
            description:
                "Stops the agent (exit status 0) after reporting this step's result. graceful: takes no new runs and waits up to timeoutSeconds for the running ones to end, then stops what is left; forced: stops the running runs at once (they end failed, with the reason). Steps after this one do not run.",
            parameters: [
                CommandParameter("mode", .string(maxLength: 16, allowed: ["graceful", "forced"]), default: "graceful", "How to treat running runs."),
                CommandParameter("timeoutSeconds", .integer(min: 1, max: 86400), default: 300, "graceful only: how long to wait for running runs."),
            ],
            resultSchema: object([
                "mode": string, "finishedRuns": ["type": "array", "items": string], "stoppedRuns": ["type": "array", "items": string],
            ])),
        BuiltinCommand(
            name: .filePut,
            description:
                "Writes a file atomically (a temporary file in the same directory, fsync, rename) as the agent's own user (not --run-as). The directory must exist.",
            parameters: [
                CommandParameter("path", .absolutePath, required: true, "Absolute path, without '..'."),
                CommandParameter("content", .base64(maxBytes: maxPutBytes), required: true, "The file's bytes in base64 (at most \(maxPutBytes / 1024) KiB decoded)."),
                CommandParameter("mode", .fileMode, default: "0644", "Permission bits in octal."),
            ],
            resultSchema: object(["path": string, "size": integer, "sha256": string, "mode": string])),
        BuiltinCommand(
            name: .fileGet, description: "Reads a regular file as the agent's own user (not --run-as), at most \(maxGetBytes / 1024) KiB.",
            parameters: [
                CommandParameter("path", .absolutePath, required: true, "Absolute path, without '..'."),
                CommandParameter(
                    "maxBytes", .integer(min: 1, max: Int64(maxGetBytes)), default: .integer(Int64(maxGetBytes)),
                    "A larger file fails the step instead of being cut."),
            ],
            resultSchema: object(["path": string, "size": integer, "sha256": string, "content": ["type": "string", "contentEncoding": "base64"]])),
        BuiltinCommand(
            name: .hostFacts, description: "Facts about the agent's host: names, operating system, kernel, CPUs, memory, load, uptime.",
            parameters: [],
            resultSchema: object([
                "hostname": string, "os": string, "kernel": string, "architecture": string, "cpuCount": integer, "memoryBytes": integer,
                "uptimeSeconds": integer, "loadAverage": ["type": "array", "items": ["type": "number"]], "agentVersion": string,
            ])),
    ]

    /// The command with this name, or nil.
    public static func named(_ name: String) -> BuiltinCommand? {
        all.first { $0.name.rawValue == name }
    }

    private static let string: JSONValue = ["type": "string"]
    private static let integer: JSONValue = ["type": "integer"]
    private static let boolean: JSONValue = ["type": "boolean"]
    private static func object(_ properties: [String: JSONValue]) -> JSONValue {
        ["type": "object", "properties": .object(properties), "required": .array(properties.keys.sorted().map { .string($0) })]
    }
}
