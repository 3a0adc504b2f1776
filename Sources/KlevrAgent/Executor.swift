import Crypto
import Foundation
import KlevrAPI
import KlevrCore
import Logging
import OpenAPIRuntime
import Subprocess
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Executes a run's steps: scripts with `/bin/sh`, each in its own process group, their output
/// streamed into the outbox; built-in commands through ``BuiltinCommandRunner``, their JSON result
/// chained to the next step like a script's result file.
///
/// The script contract (`docs/tasks.md`): parameters reach the script only through the environment
/// (`KLEVR_PARAM_<NAME>`) and the JSON file `$KLEVR_PARAMS_FILE`, never through the script text; a
/// step writes its result to `$KLEVR_RESULT_FILE`; the next step finds it in
/// `$KLEVR_PREVIOUS_RESULT_FILE`. On timeout or cancel the whole process group gets SIGTERM, then
/// SIGKILL after a grace period.
///
/// Each run works in its own directory under the work directory (outside the state directory), which
/// is removed with everything in it, parameters included, when the run ends. Steps run as `--run-as`
/// when given. The agent's secrets are masked in the output before it reaches the outbox.
public struct Executor: Sendable {
    let workDirectory: WorkDirectory
    let user: ScriptUser?
    let maskedSecrets: [String]
    /// Opens the credentials sealed to this agent (its X25519 seal key); nil for an agent without one.
    let sealKey: Curve25519.KeyAgreement.PrivateKey?
    let outbox: Outbox
    let killGrace: Duration
    let logger: Logger
    /// The time reports carry: the manager's, as the agent estimates it (the wall clock without one).
    let clock: ManagerClock?
    /// Runs the steps that are built-in commands; nil: such steps fail with the reason.
    var commands: BuiltinCommandRunner?

    /// Prepares the work directory (creates it, checks it is the agent's own, removes run directories
    /// a crashed agent left behind) and resolves the run-as user.
    /// - Parameters:
    ///   - workDir: `AgentConfig.workDir`; must not be inside the state directory.
    ///   - runAs: `AgentConfig.runAs`: the account steps run as; nil for the agent's own.
    ///   - maskedSecrets: values replaced by `********` in the output (the agent's credential and keys);
    ///     values shorter than 8 characters are ignored.
    /// - Throws: ``ScriptUser/LookupError`` for an unusable `runAs`, ``WorkDirectory/Failure`` for an
    ///   unusable work directory; both describe themselves for the operator.
    public init(
        workDir: String, runAs: String? = nil, maskedSecrets: [String] = [], sealKey: Curve25519.KeyAgreement.PrivateKey? = nil, outbox: Outbox,
        killGraceSeconds: Double, logger: Logger, clock: ManagerClock? = nil
    ) throws {
        self.clock = clock
        self.sealKey = sealKey
        let user = try runAs.map { name throws(ScriptUser.LookupError) in try ScriptUser.lookup(name) }
        self.user = user
        self.workDirectory = try WorkDirectory.prepare(path: workDir, owner: (user?.isOtherThanAgent ?? false) ? user : nil)
        self.maskedSecrets = maskedSecrets
        self.outbox = outbox
        self.killGrace = .milliseconds(Int(killGraceSeconds * 1000))
        self.logger = logger
    }

    func now() -> Int64 { clock?.now() ?? Clock.nowMillis() }

    /// What the concurrent parts of a step report.
    enum StepPiece: Sendable {
        case readerDone
        case ticker
        case watchdog(StopReason?)
    }

    /// How one step ended.
    enum StepEnd: Equatable {
        case exited(Int32)
        case signaled(Int32)
        case stopped(StopReason)
    }

    /// Runs every step of the envelope and returns the run's result. Never throws: failures to even
    /// start a step become a failed result with the reason. The run directory is gone when it returns.
    public func execute(_ envelope: RunEnvelope, control: RunControl) async -> RunResult {
        let runID = envelope.runId
        if let stop = await control.stopReason {
            // Stopped while it waited for a slot: nothing was started.
            return stoppedBeforeStart(runID: runID, stop)
        }
        // Credentials reach the steps only as environment variables, and are masked in their output.
        let credentials: [String: String]
        do {
            credentials = try envelope.openedCredentials(with: sealKey)
        } catch {
            return RunResult(runId: runID, outcome: .failed, exitCode: nil, reason: "not started: \(error)", result: nil, finishedAt: now())
        }
        let secrets = Self.secretsToMask(agent: maskedSecrets, credentials: Array(credentials.values))
        let directory: String
        let paramsJSON: Data
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            paramsJSON = try encoder.encode(envelope.params)
            directory = try workDirectory.createRunDirectory(runID: runID, parameters: paramsJSON)
        } catch {
            return couldNotExecute(runID: runID, error)
        }
        var result = await executeSteps(
            envelope, directory: directory, paramsJSON: paramsJSON, credentials: credentials, secrets: secrets, control: control)
        if result.outcome == .failed, let recoverSteps = envelope.recover, !recoverSteps.isEmpty, await control.stopReason == nil {
            result = await recover(
                envelope, steps: recoverSteps, failure: result, directory: directory, paramsJSON: paramsJSON, credentials: credentials, secrets: secrets,
                control: control)
        }
        do {
            try workDirectory.removeRunDirectory(directory)
        } catch {
            logger.error("could not remove a run directory", metadata: ["run.id": "\(runID)", "error": "\(error)"])
        }
        result.result = result.result.map { Self.masked($0, secrets: secrets) }
        result.reason = result.reason.map { Self.masked($0, secrets: secrets) }
        return result
    }

    /// Runs the task's recover steps after a step failed (not after a timeout, a cancel or a shutdown):
    /// the run is reported `recovering` first. The run ends `failed` whatever they do, saying whether they
    /// recovered it, or `failed_recover` when one of them fails too. They see the failure in
    /// `KLEVR_FAILED_STEP` and `KLEVR_FAILED_REASON`.
    private func recover(
        _ envelope: RunEnvelope, steps: [StepSpec], failure: RunResult, directory: String, paramsJSON: Data, credentials: [String: String],
        secrets: [String], control: RunControl
    ) async -> RunResult {
        do {
            try await outbox.reportRecovering(envelope.runId, at: now())
        } catch {
            logger.error("could not record a run's recovery", metadata: ["run.id": "\(envelope.runId)", "error": "\(error)"])
        }
        var recovery = envelope
        recovery.steps = steps
        let failedReason = failure.reason ?? "a step failed"
        // The failed step's number, from its reason ("step 2 (name) exited with status 3").
        let words = failedReason.split(separator: " ")
        let failedStep = words.first == "step" && words.count > 1 ? String(words[1]) : ""
        let extra = ["KLEVR_FAILED_REASON": failedReason, "KLEVR_FAILED_STEP": failedStep]
        let recovered = await executeSteps(
            recovery, directory: directory, paramsJSON: paramsJSON, credentials: credentials, secrets: secrets, control: control, extra: extra)
        switch recovered.outcome {
        case .succeeded:
            return RunResult(
                runId: failure.runId, outcome: .failed, exitCode: failure.exitCode, reason: "\(failedReason); recovered: the recover steps succeeded",
                result: recovered.result ?? failure.result, finishedAt: recovered.finishedAt)
        case .failed, .failedRecover:
            return RunResult(
                runId: failure.runId, outcome: .failedRecover, exitCode: failure.exitCode,
                reason: "\(failedReason); recovery failed: \(recovered.reason ?? "a recover step failed")", result: recovered.result ?? failure.result,
                finishedAt: recovered.finishedAt)
        case .timedOut, .canceled, .expired:
            // Stopped while recovering: the stop says what the run became.
            return RunResult(
                runId: failure.runId, outcome: recovered.outcome, exitCode: failure.exitCode, reason: "\(failedReason); then \(recovered.reason ?? "stopped")",
                result: recovered.result ?? failure.result, finishedAt: recovered.finishedAt)
        }
    }

    /// What a run's output is masked for: the agent's own secrets (8 characters or more) and the run's
    /// credential values (4 or more), each also as it appears inside a JSON string (quotes, backslashes
    /// and control characters escaped) when that differs.
    static func secretsToMask(agent: [String], credentials: [String]) -> [String] {
        let usable = credentials.filter { $0.unicodeScalars.count >= credentialMinimumLength }
        let escaped = usable.compactMap { value -> String? in
            guard let data = try? JSONEncoder().encode(value), data.count > 2 else { return nil }
            let inner = String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
            return inner == value ? nil : inner
        }
        return agent.filter { $0.utf8.count >= SecretMasker.minimumLength } + usable + escaped
    }

    /// Credential values shorter than this are not masked: they would mask ordinary output.
    static let credentialMinimumLength = 4

    private func executeSteps(
        _ envelope: RunEnvelope, directory: String, paramsJSON: Data, credentials: [String: String], secrets: [String], control: RunControl,
        extra: [String: String] = [:]
    ) async -> RunResult {
        let runID = envelope.runId
        do {
            let paramsFile = directory + "/" + WorkDirectory.parametersFileName
            let deadline = ContinuousClock.now + .seconds(envelope.timeoutSeconds)
            var previousResult: String?
            var previousResultText: String?
            var lastResultText: String?
            for (index, step) in envelope.steps.enumerated() {
                let resultFile = directory + "/result-\(index + 1)"
                let stepName = step.name.map { "step \(index + 1) (\($0))" } ?? "step \(index + 1)"
                var stepDeadline = deadline
                if let seconds = step.timeoutSeconds { stepDeadline = min(deadline, ContinuousClock.now + .seconds(seconds)) }
                // A built-in command: its JSON result is the next step's previous result.
                if let command = step.command {
                    switch await runCommand(command, args: step.args, runID: runID, deadline: stepDeadline, control: control) {
                    case .stopped(let why):
                        return stoppedResult(runID: runID, why, stepName: stepName, result: lastResultText)
                    case .finished(.failed(let reason)):
                        return RunResult(
                            runId: runID, outcome: .failed, exitCode: nil, reason: "\(stepName) (\(command)) failed: \(reason)", result: lastResultText,
                            finishedAt: now())
                    case .finished(.succeeded(let value, let endsRun)):
                        let text = value.jsonText()
                        lastResultText = text
                        previousResultText = text
                        // Readable by a --run-as user: the next step reads it.
                        if FileManager.default.createFile(atPath: resultFile, contents: Data(text.utf8), attributes: [.posixPermissions: 0o644]) {
                            previousResult = resultFile
                        }
                        if endsRun {
                            return RunResult(runId: runID, outcome: .succeeded, exitCode: 0, reason: nil, result: text, finishedAt: now())
                        }
                    }
                    continue
                }
                // A step of a kind this agent does not know (a newer manager's): refused, nothing runs.
                guard let script = step.script else {
                    return RunResult(
                        runId: runID, outcome: .failed, exitCode: nil,
                        reason: "\(stepName) is neither a script nor a built-in command this agent (version \(HostFactsCollector.agentVersion)) knows; nothing of it ran",
                        result: lastResultText, finishedAt: now())
                }
                var env = Self.baseEnvironment(user: user)
                env["KLEVR_RUN_ID"] = runID
                env["KLEVR_TASK_ID"] = envelope.taskId
                env["KLEVR_ZONE"] = envelope.zone
                env["KLEVR_STEP"] = String(index + 1)
                env["KLEVR_PARAMS_FILE"] = paramsFile
                env["KLEVR_RESULT_FILE"] = resultFile
                env["KLEVR_PREVIOUS_RESULT_FILE"] = previousResult ?? "/dev/null"
                env["TASK_ORIGIN_PARAM"] = String(decoding: paramsJSON, as: UTF8.self)
                env["TASK_RESULT"] = previousResultText ?? ""
                for (name, value) in envelope.params.additionalProperties { env["KLEVR_PARAM_" + name] = value }
                for (name, value) in credentials { env["KLEVR_CRED_" + name] = value }
                for (name, value) in extra { env[name] = value }
                let end = try await runStep(
                    runID: runID, script: script, environment: env, directory: directory, deadline: stepDeadline, secrets: secrets,
                    control: control)
                lastResultText = workDirectory.readResult(resultFile)
                switch end {
                case .exited(0):
                    previousResult = resultFile
                    previousResultText = lastResultText
                case .exited(let code):
                    return RunResult(
                        runId: runID, outcome: .failed, exitCode: Int(code), reason: "\(stepName) exited with status \(code)",
                        result: lastResultText, finishedAt: now())
                case .signaled(let signal):
                    return RunResult(
                        runId: runID, outcome: .failed, exitCode: nil, reason: "\(stepName) was killed by signal \(signal)",
                        result: lastResultText, finishedAt: now())
                case .stopped(let why):
                    return stoppedResult(runID: runID, why, stepName: stepName, result: lastResultText)
                }
            }
            return RunResult(runId: runID, outcome: .succeeded, exitCode: 0, reason: nil, result: lastResultText, finishedAt: now())
        } catch {
            return couldNotExecute(runID: runID, error)
        }
    }

    private func stoppedResult(runID: String, _ why: StopReason, stepName: String, result: String?) -> RunResult {
        switch why {
        case .timedOut:
            RunResult(
                runId: runID, outcome: .timedOut, exitCode: nil, reason: "\(stepName) exceeded its timeout; its process group was killed", result: result,
                finishedAt: now())
        case .canceled:
            RunResult(
                runId: runID, outcome: .canceled, exitCode: nil, reason: "canceled during \(stepName); its process group was killed", result: result,
                finishedAt: now())
        case .shutdown:
            RunResult(
                runId: runID, outcome: .failed, exitCode: nil, reason: "the agent shut down during \(stepName); its process group was killed",
                result: result, finishedAt: now())
        }
    }

    /// How a command step ended.
    enum CommandStepEnd: Sendable {
        case finished(BuiltinCommandRunner.Outcome)
        case stopped(StopReason)
    }

    /// Runs a built-in command step, stopped early by the step's deadline or a stop order.
    private func runCommand(
        _ name: String, args: OpenAPIObjectContainer?, runID: String, deadline: ContinuousClock.Instant, control: RunControl
    ) async -> CommandStepEnd {
        guard let commands else { return .finished(.failed("this agent process runs no built-in commands")) }
        let value: JSONValue?
        do {
            value = try args.map { try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode($0)) }
        } catch {
            return .finished(.failed("args: not a JSON object"))
        }
        if let stop = await control.stopReason { return .stopped(stop) }
        return await withTaskGroup(of: CommandStepEnd?.self) { race in
            race.addTask { .finished(await commands.run(name, args: value, runID: runID)) }
            race.addTask {
                do {
                    try await Task.sleep(until: deadline, clock: .continuous)
                    return .stopped(.timedOut)
                } catch { return nil }
            }
            race.addTask { await control.stopped().map { .stopped($0) } }
            var first: CommandStepEnd?
            while first == nil, let next = await race.next() { first = next }
            race.cancelAll()
            return first ?? .stopped(.canceled)
        }
    }

    private func couldNotExecute(runID: String, _ error: any Error) -> RunResult {
        logger.error("could not execute a run", metadata: ["run.id": "\(runID)", "error": "\(error)"])
        return RunResult(
            runId: runID, outcome: .failed, exitCode: nil, reason: "the agent could not execute the run: \(error)", result: nil,
            finishedAt: now())
    }

    func stoppedBeforeStart(runID: String, _ stop: StopReason) -> RunResult {
        switch stop {
        case .canceled:
            RunResult(runId: runID, outcome: .canceled, exitCode: nil, reason: "canceled before it started", result: nil, finishedAt: now())
        case .timedOut:
            RunResult(
                runId: runID, outcome: .timedOut, exitCode: nil, reason: "timed out before it started", result: nil, finishedAt: now())
        case .shutdown:
            RunResult(
                runId: runID, outcome: .failed, exitCode: nil, reason: "the agent shut down before the run started", result: nil,
                finishedAt: now())
        }
    }

    /// `text` with `secrets` masked.
    static func masked(_ text: String, secrets: [String]) -> String {
        var masker = SecretMasker(secrets: secrets, minimumLength: credentialMinimumLength)
        let bytes = masker.mask(Array(text.utf8)) + masker.finish()
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Kills what is left of a run that was executing when the agent stopped (a SIGKILLed agent cannot
    /// take its children along). Processes are recognised by `KLEVR_RUN_ID=<run id>` in their
    /// environment, which every step process and its children inherit, so no unrelated process is hit.
    /// - Returns: how many processes were killed.
    @discardableResult
    public static func killLeftovers(of runID: String) -> Int {
        guard Validation.isValidID(runID) else { return 0 }
        let needle = Array("KLEVR_RUN_ID=\(runID)".utf8)
        var killed = 0
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = Int32(entry), pid != getpid(),
                let environ = FileManager.default.contents(atPath: "/proc/\(entry)/environ")
            else { continue }
            let variables = environ.split(separator: 0)
            if variables.contains(where: { Array($0) == needle }) {
                kill(pid, SIGKILL)
                killed += 1
            }
        }
        return killed
    }

    /// The environment a step starts from: only harmless variables of the agent, never its secrets;
    /// with a run-as user, that user's home and name.
    static func baseEnvironment(user: ScriptUser? = nil) -> [String: String] {
        let inherited = ProcessInfo.processInfo.environment
        var env: [String: String] = ["PATH": inherited["PATH"] ?? "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"]
        for name in ["HOME", "LANG", "LC_ALL", "USER", "LOGNAME", "TZ", "TMPDIR"] {
            if let value = inherited[name] { env[name] = value }
        }
        if let user {
            env["HOME"] = user.home
            env["USER"] = user.name
            env["LOGNAME"] = user.name
        }
        return env
    }

    private func runStep(
        runID: String, script: String, environment: [String: String], directory: String, deadline: ContinuousClock.Instant,
        secrets: [String], control: RunControl
    ) async throws -> StepEnd {
        var options = PlatformOptions()
        options.createSession = true
        let platformOptions = options
        // Another user: setpriv (util-linux) switches ids and groups, then execs the shell. Setting ids
        // through the spawn options would make swift-subprocess fork instead of posix_spawn, and a fork of
        // this multi-threaded process can deadlock in the child before exec (seen under load).
        var executable = "/bin/sh"
        var arguments = ["-c", script]
        if let user, user.isOtherThanAgent {
            guard let setpriv = ScriptUser.setprivPath else {
                throw ScriptUser.LookupError.missingSetpriv
            }
            executable = setpriv
            let groups = user.groups.map { String($0) }.joined(separator: ",")
            arguments = ["--reuid=\(user.uid)", "--regid=\(user.gid)"] + (groups.isEmpty ? ["--clear-groups"] : ["--groups=\(groups)"])
                + ["--", "/bin/sh", "-c", script]
        }
        var keys: [Environment.Key: String] = [:]
        for (name, value) in environment { keys[Environment.Key(stringLiteral: name)] = value }
        let output = StepOutput(runID: runID, outbox: outbox, coalescer: OutputCoalescer(secrets: secrets, minimumSecretLength: Self.credentialMinimumLength), clock: clock)
        let killGrace = self.killGrace
        let result = try await Subprocess.run(
            .path(FilePath(executable)), arguments: Arguments(arguments), environment: .custom(keys), workingDirectory: FilePath(directory),
            platformOptions: platformOptions, input: .none, output: .sequence, error: .sequence
        ) { execution -> StopReason? in
            let group = execution.processIdentifier.value
            return try await withThrowingTaskGroup(of: StepPiece.self) { tasks in
                tasks.addTask {
                    for try await buffer in execution.standardOutput {
                        try await output.append(buffer.withUnsafeBytes { Array($0) }, from: .stdout)
                    }
                    return .readerDone
                }
                tasks.addTask {
                    for try await buffer in execution.standardError {
                        try await output.append(buffer.withUnsafeBytes { Array($0) }, from: .stderr)
                    }
                    return .readerDone
                }
                // Output that trickles in is flushed when it has waited the coalescing interval.
                tasks.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(50))
                        try await output.tick()
                    }
                    return .ticker
                }
                // The watchdog: on timeout or stop, SIGTERM the whole group, then SIGKILL after the grace
                // (or at once when the group's output closes first).
                tasks.addTask {
                    let why: StopReason? = await withTaskGroup(of: StopReason?.self) { race in
                        race.addTask {
                            do {
                                try await Task.sleep(until: deadline, clock: .continuous)
                                return .timedOut
                            } catch { return nil }
                        }
                        race.addTask { await control.stopped() }
                        let first = await race.next() ?? nil
                        race.cancelAll()
                        return first
                    }
                    guard let why else { return .watchdog(nil) }
                    kill(-group, SIGTERM)
                    try? await Task.sleep(for: killGrace)
                    kill(-group, SIGKILL)
                    return .watchdog(why)
                }
                var readersDone = 0
                var stop: StopReason?
                while let piece = try await tasks.next() {
                    switch piece {
                    case .readerDone:
                        readersDone += 1
                        // Both pipes are closed: the step's processes are gone or closed their output.
                        if readersDone == 2 { tasks.cancelAll() }
                    case .ticker:
                        break
                    case .watchdog(let why):
                        stop = why
                    }
                }
                try await output.finish()
                return stop
            }
        }
        if let stop = result.closureResult {
            return .stopped(stop)
        }
        switch result.terminationStatus {
        case .exited(let code): return .exited(code)
        case .signaled(let signal): return .signaled(signal)
        }
    }
}
