import Foundation
import KlevrAPI
import KlevrCore
import KlevrStore

/// A refusal of a service, with no HTTP in it: the API part (``ProblemMiddleware``) turns it into a
/// problem document.
enum ServiceError: Error, Sendable {
    /// Fields of the request that are wrong (422).
    case invalid([ProblemDocument.FieldError])
    /// Something the request names does not exist (404).
    case notFound(String)
    /// The request cannot be done in the current state (409).
    case conflict(String)

    static func invalid(_ field: String, _ message: String) -> ServiceError { .invalid([.init(field: field, message: message)]) }
}

/// Task creation: validation, the choice of target agents (one agent, any online agent, all agents of a
/// zone) and storing the task with one queued run per target. The routes only decode, call and encode.
struct TaskService: Sendable {
    static let maxTimeoutSeconds = 7 * 86400
    static let defaultTimeoutSeconds = 3600
    /// The latest `runAt` (2100-01-01T00:00:00Z), as the document says.
    static let latestRunAt: Int64 = 4_102_444_800_000
    static let maxDeliverWithinSeconds = 30 * 86400

    let store: Store
    /// Whether an agent is online now (the manager's liveness view).
    let isOnline: @Sendable (AgentRecord) -> Bool

    /// Validates a task, picks its agents and stores it with one queued run per agent.
    func create(_ body: TaskSpec, by user: UserRecord, actor: EventActor, now: Int64) async throws
        -> (task: TaskRecord, targets: [AgentRecord])
    {
        try Self.validate(body)
        // A recurring task's schedule is checked whole before anything is looked up or stored.
        let recurrence = try body.recurrence.map { try Self.recurrence($0, runAt: body.runAt, now: now) }
        // A well-formed reference to something that does not exist is a 404, as for a path.
        guard let zone = try await store.zone(named: body.zone) else { throw ServiceError.notFound("no zone named '\(body.zone)'") }
        let known = try await store.credentialNames(body.credentials, zoneID: zone.id)
        // Like a zone that does not exist: a well-formed name of nothing is a 404, naming the entry.
        if let (index, name) = body.credentials.enumerated().first(where: { !known.contains($0.element) }) {
            throw ServiceError.notFound("credentials[\(index)]: no credential '\(name)' in zone '\(zone.name)' or global")
        }
        let targets: [AgentRecord]
        switch body.target.kind {
        // A recurring task picks its agents at each occurrence; only a named agent must exist now.
        case .any where recurrence != nil, .all where recurrence != nil, .selector where recurrence != nil:
            targets = []
        case .agent:
            // One lookup by id: creating a task for one agent costs the same in a zone of any size.
            guard let agentID = body.target.agentId, let agent = try await store.agent(id: agentID),
                agent.zoneID == zone.id, agent.retiredAt == nil, agent.retireRequestedAt == nil
            else {
                throw ServiceError.notFound("no active agent with this id in zone '\(zone.name)'")
            }
            targets = [agent]
        case .any:
            guard let agent = try await store.activeAgents(zoneID: zone.id, retiring: false).filter(isOnline).randomElement() else {
                throw ServiceError.conflict("zone '\(zone.name)' has no online agent")
            }
            targets = [agent]
        case .all:
            let agents = try await store.activeAgents(zoneID: zone.id, retiring: false)
            guard !agents.isEmpty else { throw ServiceError.conflict("zone '\(zone.name)' has no agents") }
            targets = agents
        case .selector:
            let selector = try Self.selector(body.target)
            let agents = try await store.activeAgents(matching: selector, zoneID: body.target.allZones == true ? nil : zone.id)
            guard !agents.isEmpty else {
                let scope = body.target.allZones == true ? "in any zone" : "in zone '\(zone.name)'"
                throw ServiceError.conflict("no active agent \(scope) matches the selector '\(selector)'")
            }
            targets = agents
        }
        let name = body.name ?? Self.defaultName(body.steps[0])
        let record = TaskRecord(
            id: Secrets.newID(), name: name, zoneID: zone.id, zoneName: zone.name, targetJSON: try Self.json(body.target),
            stepsJSON: try Self.json(body.steps), paramsJSON: try Self.json(body.params ?? [:]),
            timeoutSeconds: body.timeoutSeconds ?? Self.defaultTimeoutSeconds, createdAt: now, createdBy: user.username, canceledAt: nil,
            runAt: body.runAt, deliverWithinSeconds: body.deliverWithinSeconds
        ).with(recurrence: recurrence, credentials: body.credentials, recoverJSON: try Self.json(body.recover))
            .with(maxConcurrency: body.maxConcurrency, maxErrors: body.maxErrors)
        _ = try await store.createTask(
            record, targets: recurrence == nil ? targets.map { RunTarget(agentID: $0.id, zoneID: $0.zoneID) } : [], actor: actor,
            callback: body.callback)
        if recurrence != nil || body.runAt != nil || body.deliverWithinSeconds != nil {
            // Something with a time: the scheduler looks again now instead of at its next moment.
            await store.hub.signal([RunScheduler.wakeKey])
        }
        return (record, targets)
    }

    /// Runs a task now on its target as it is now (a named agent if still active, one online agent, every
    /// active agent, the agents its selector matches), whatever its schedule (see
    /// ``Store/runTaskNow(taskID:targets:now:actor:refuseWhileActive:)``). A recurring task whose overlap
    /// policy is `skip` refuses while one of its runs has not ended, as its schedule would.
    func runNow(_ taskID: String, actor: EventActor, now: Int64) async throws -> [RunRecord] {
        guard let task = try await store.task(id: taskID) else { throw ServiceError.notFound("no task \(taskID)") }
        guard task.canceledAt == nil else { throw ServiceError.conflict("task \(taskID) was canceled") }
        let targets = try await targetsNow(task)
        guard !targets.isEmpty else {
            throw ServiceError.conflict("task \(taskID) has no agent to run on now (no active agent matches its target, or none is online)")
        }
        // A credential it names may have been deleted since (allowed once no unfinished task used it).
        let known = try await store.credentialNames(task.credentials, zoneID: task.zoneID)
        if let missing = task.credentials.first(where: { !known.contains($0) }) {
            throw ServiceError.conflict("task \(taskID) names the credential '\(missing)', which no longer exists")
        }
        let skipWhileActive = try task.recurrence.map { try Self.schedule(of: $0, taskID: task.id).overlap == .skip } ?? false
        return try await store.runTaskNow(taskID: taskID, targets: targets, now: now, actor: actor, refuseWhileActive: skipWhileActive)
    }

    // MARK: - Recurring tasks

    /// The stored form of a recurrence, validated: a 422 names the field (and, for the cron expression or
    /// the zone, the position).
    static func recurrence(_ spec: RecurrenceSpec, runAt: Int64?, now: Int64) throws(ServiceError) -> RecurrenceRecord {
        if runAt != nil { throw .invalid("schedule", "a task has either runAt or a schedule, not both") }
        let schedule = try schedule(
            cron: spec.cron, timeZone: spec.timeZone, until: spec.until, maxOccurrences: spec.maxOccurrences, overlap: spec.overlap,
            catchUp: catchUpText(spec.catchUp, limit: spec.catchUpLimit))
        return RecurrenceRecord(
            cron: spec.cron, timeZone: spec.timeZone, until: spec.until, maxOccurrences: spec.maxOccurrences, overlap: spec.overlap.rawValue,
            catchUp: catchUpText(spec.catchUp, limit: spec.catchUpLimit), cursor: now, firedCount: 0,
            nextFireAt: schedule.cron.nextFireTimes(after: now, count: 1, until: spec.until).first, pausedAt: nil)
    }

    static func catchUpText(_ mode: String, limit: Int) -> String { mode == "all" ? "all:\(limit)" : mode }

    /// The schedule a recurrence describes.
    static func schedule(
        cron: String, timeZone: String, until: Int64?, maxOccurrences: Int?, overlap: OverlapPolicy, catchUp: String
    ) throws(ServiceError) -> RecurringSchedule {
        let cronSchedule: CronSchedule
        do {
            cronSchedule = try CronSchedule(expression: cron, timeZone: timeZone)
        } catch {
            throw .invalid(error.field == .timeZone ? "schedule.timeZone" : "schedule.cron", error.description)
        }
        let policy: CatchUpPolicy
        switch catchUp {
        case "none": policy = .none
        case "latest": policy = .latest
        case let text where text.hasPrefix("all:"):
            guard let limit = Int(text.dropFirst(4)) else { throw .invalid("schedule.catchUpLimit", "is not a number") }
            policy = .all(limit: limit)
        default: throw .invalid("schedule.catchUp", "must be none, latest or all")
        }
        do {
            return try RecurringSchedule(cron: cronSchedule, until: until, maxOccurrences: maxOccurrences, overlap: overlap, catchUp: policy)
        } catch {
            throw .invalid("schedule.\(error.field)", error.message)
        }
    }

    /// The schedule of a stored recurring task; one that no longer reads is corrupt data.
    static func schedule(of recurrence: RecurrenceRecord, taskID: String) throws -> RecurringSchedule {
        guard let overlap = OverlapPolicy(rawValue: recurrence.overlap) else {
            throw StoreError.corrupt("task \(taskID) has an unknown overlap policy '\(recurrence.overlap)'")
        }
        do {
            return try schedule(
                cron: recurrence.cron, timeZone: recurrence.timeZone, until: recurrence.until, maxOccurrences: recurrence.maxOccurrences,
                overlap: overlap, catchUp: recurrence.catchUp)
        } catch {
            throw StoreError.corrupt("task \(taskID) has a stored schedule that does not read: \(error)")
        }
    }

    /// The next occurrences of a recurring task (none when it is paused, canceled or finished).
    static func nextFireTimes(of task: TaskRecord, count: Int) throws -> [Int64] {
        guard let recurrence = task.recurrence, recurrence.pausedAt == nil, task.canceledAt == nil, let next = recurrence.nextFireAt else { return [] }
        let schedule = try schedule(of: recurrence, taskID: task.id)
        let left = schedule.maxOccurrences.map { max(0, $0 - recurrence.firedCount) } ?? count
        return Array(([next] + schedule.cron.nextFireTimes(after: next, count: count - 1, until: schedule.until)).prefix(min(count, left)))
    }

    /// Fires what is due of a recurring task: the occurrences the schedule picks run on the task's
    /// target as it is now (a named agent if still active, one online agent, or every active agent); the
    /// others are counted as skipped. The cursor moves in the same transaction as the runs are created,
    /// from the value read: a second scheduler (or this one after a restart) never fires one twice.
    func fire(_ task: TaskRecord, now: Int64) async throws -> [RunRecord] {
        guard let decision = try await firing(task, now: now) else { return [] }
        return try await store.fire(taskID: task.id, expectedCursor: decision.expectedCursor, decision.firing, now: now) ?? []
    }

    /// Fires what is due of several tasks, as ``fire(_:now:)`` does for each, writing them in batches of
    /// `batch` tasks per transaction. A task whose decision cannot be made (a corrupt schedule) is logged
    /// through `failed` and left for the next pass; the others fire.
    func fire(_ tasks: [TaskRecord], now: Int64, batch: Int = 100, failed: (TaskRecord, any Error) -> Void) async throws -> [RunRecord] {
        var zoneAgents: [String: [AgentRecord]] = [:]
        var decisions: [(taskID: String, expectedCursor: Int64, firing: Store.Firing)] = []
        for task in tasks {
            do {
                if let decision = try await firing(task, now: now, zoneAgents: &zoneAgents) {
                    decisions.append((task.id, decision.expectedCursor, decision.firing))
                }
            } catch {
                failed(task, error)
            }
        }
        var runs: [RunRecord] = []
        for start in stride(from: 0, to: decisions.count, by: batch) {
            runs += try await store.fire(Array(decisions[start..<min(start + batch, decisions.count)]), now: now)
        }
        return runs
    }

    /// What firing a recurring task means now: the occurrences to fire on which agents, those skipped and
    /// why, and where the cursor moves (from the value read). Nil for a task that is not recurring.
    func firing(_ task: TaskRecord, now: Int64) async throws -> (expectedCursor: Int64, firing: Store.Firing)? {
        var zoneAgents: [String: [AgentRecord]] = [:]
        return try await firing(task, now: now, zoneAgents: &zoneAgents)
    }

    func firing(
        _ task: TaskRecord, now: Int64, zoneAgents: inout [String: [AgentRecord]]
    ) async throws -> (expectedCursor: Int64, firing: Store.Firing)? {
        guard let recurrence = task.recurrence else { return nil }
        let schedule = try Self.schedule(of: recurrence, taskID: task.id)
        let active = schedule.overlap == .skip ? try await store.hasActiveRuns(taskID: task.id) : false
        let due = schedule.due(ScheduleProgress(cursor: recurrence.cursor, firedCount: recurrence.firedCount, previousRunActive: active), now: now)
        var fire = due.fire
        var reasons: [String] = []
        if due.skippedForOverlap > 0 { reasons.append("\(due.skippedForOverlap) while a run of the task was still active (overlap: skip)") }
        if due.missed > 0 { reasons.append("\(due.missed) missed while the manager was down (catchUp)") }
        var skipped = due.skippedForOverlap + due.missed
        var agents: [RunTarget] = []
        if !fire.isEmpty {
            agents = try await targetsNow(task, zoneAgents: &zoneAgents)
            if agents.isEmpty {
                reasons.append("\(fire.count) with no agent to run on")
                skipped += fire.count
                fire = []
            }
        }
        var firing = Store.Firing(
            fire: fire, agentIDs: agents.map(\.agentID), skipped: skipped, skipReason: reasons.joined(separator: "; "), cursor: due.cursor,
            firedCount: recurrence.firedCount + fire.count, nextFireAt: due.next)
        firing.zones = Dictionary(agents.map { ($0.agentID, $0.zoneID) }, uniquingKeysWith: { first, _ in first })
        return (recurrence.cursor, firing)
    }

    /// The agents a recurring task's occurrence runs on now (a selector is matched against the labels as
    /// they are at that occurrence).
    func targetsNow(_ task: TaskRecord) async throws -> [RunTarget] {
        var zoneAgents: [String: [AgentRecord]] = [:]
        return try await targetsNow(task, zoneAgents: &zoneAgents)
    }

    /// The agents a recurring task's occurrence runs on now; a zone's active agents are read once per
    /// `zoneAgents` (one scheduling pass).
    func targetsNow(_ task: TaskRecord, zoneAgents: inout [String: [AgentRecord]]) async throws -> [RunTarget] {
        let target: TaskTarget
        do {
            target = try JSONDecoder().decode(TaskTarget.self, from: Data(task.targetJSON.utf8))
        } catch {
            throw StoreError.corrupt("task \(task.id) has a stored target that does not decode: \(error)")
        }
        switch target.kind {
        case .agent:
            guard let id = target.agentId, let agent = try await store.agent(id: id), agent.zoneID == task.zoneID, agent.retiredAt == nil,
                agent.retireRequestedAt == nil
            else { return [] }
            return [RunTarget(agentID: agent.id, zoneID: agent.zoneID)]
        case .any, .all:
            let active: [AgentRecord]
            if let known = zoneAgents[task.zoneID] {
                active = known
            } else {
                active = try await store.activeAgents(zoneID: task.zoneID, retiring: false)
                zoneAgents[task.zoneID] = active
            }
            let chosen = target.kind == .any ? active.filter(isOnline).randomElement().map { [$0] } ?? [] : active
            return chosen.map { RunTarget(agentID: $0.id, zoneID: $0.zoneID) }
        case .selector:
            let selector: LabelSelector
            do {
                selector = try Self.selector(target)
            } catch {
                throw StoreError.corrupt("task \(task.id) has a stored selector that does not parse: \(error)")
            }
            return try await store.activeAgents(matching: selector, zoneID: target.allZones == true ? nil : task.zoneID)
                .map { RunTarget(agentID: $0.id, zoneID: $0.zoneID) }
        }
    }

    /// The parsed selector of a `kind: selector` target; a 422 names `target.selector` and the position.
    static func selector(_ target: TaskTarget) throws(ServiceError) -> LabelSelector {
        guard let text = target.selector else { throw .invalid("target.selector", "is required when target.kind is 'selector'") }
        do {
            return try LabelSelector(text)
        } catch {
            throw .invalid("target.selector", error.description)
        }
    }

    static func validate(_ body: TaskSpec) throws(ServiceError) {
        var errors: [ProblemDocument.FieldError] = []
        if let name = body.name, name.unicodeScalars.count > 200 { errors.append(.init(field: "name", message: "at most 200 characters")) }
        if body.steps.isEmpty || body.steps.count > 50 { errors.append(.init(field: "steps", message: "1 to 50 steps")) }
        var scriptBytes = 0
        for (index, step) in body.steps.enumerated() {
            errors += commandProblems(step, field: "steps[\(index)]")
            if let script = step.script {
                scriptBytes += script.utf8.count
                if Validation.isBlank(script) {
                    errors.append(.init(field: "steps[\(index)].script", message: "must not be empty"))
                }
                if script.unicodeScalars.contains("\0") { errors.append(.init(field: "steps[\(index)].script", message: "must not contain NUL")) }
            }
            if let timeout = step.timeoutSeconds, !(1...maxTimeoutSeconds).contains(timeout) {
                errors.append(.init(field: "steps[\(index)].timeoutSeconds", message: "1 to \(maxTimeoutSeconds)"))
            }
            if let name = step.name, name.unicodeScalars.count > 200 { errors.append(.init(field: "steps[\(index)].name", message: "at most 200 characters")) }
        }
        if body.recover.count > 10 { errors.append(.init(field: "recover", message: "at most 10 recover steps")) }
        for (index, step) in body.recover.enumerated() {
            errors += commandProblems(step, field: "recover[\(index)]")
            if let script = step.script {
                scriptBytes += script.utf8.count
                if Validation.isBlank(script) || script.unicodeScalars.contains("\0") {
                    errors.append(.init(field: "recover[\(index)].script", message: "must not be empty or contain NUL"))
                }
            }
            if let timeout = step.timeoutSeconds, !(1...maxTimeoutSeconds).contains(timeout) {
                errors.append(.init(field: "recover[\(index)].timeoutSeconds", message: "1 to \(maxTimeoutSeconds)"))
            }
            if let name = step.name, name.unicodeScalars.count > 200 { errors.append(.init(field: "recover[\(index)].name", message: "at most 200 characters")) }
        }
        if scriptBytes > 256 * 1024 { errors.append(.init(field: "steps", message: "scripts total at most 256 KiB")) }
        let params = body.params ?? [:]
        if params.count > 100 { errors.append(.init(field: "params", message: "at most 100 parameters")) }
        for (name, value) in params.sorted(by: { $0.key < $1.key }) {
            if !Validation.isValidParameterName(name) {
                errors.append(.init(field: "params.\(name)", message: "names use letters, digits and '_' and do not start with a digit"))
            }
            if value.unicodeScalars.count > 64 * 1024 || value.unicodeScalars.contains("\0") {
                errors.append(.init(field: "params.\(name)", message: "at most 65536 characters, no NUL"))
            }
        }
        if let timeout = body.timeoutSeconds, !(1...maxTimeoutSeconds).contains(timeout) {
            errors.append(.init(field: "timeoutSeconds", message: "1 to \(maxTimeoutSeconds)"))
        }
        if let runAt = body.runAt, !(0...latestRunAt).contains(runAt) {
            errors.append(.init(field: "runAt", message: "epoch milliseconds from 0 to \(latestRunAt) (2100-01-01)"))
        }
        if let within = body.deliverWithinSeconds, !(1...maxDeliverWithinSeconds).contains(within) {
            errors.append(.init(field: "deliverWithinSeconds", message: "1 to \(maxDeliverWithinSeconds)"))
        }
        if body.credentials.count > 20 { errors.append(.init(field: "credentials", message: "at most 20")) }
        for (index, name) in body.credentials.enumerated() {
            if !Validation.isValidParameterName(name) {
                errors.append(.init(field: "credentials[\(index)]", message: "letters, digits and '_', not starting with a digit"))
            } else if body.credentials[..<index].contains(name) {
                errors.append(.init(field: "credentials[\(index)]", message: "'\(name)' is named twice"))
            }
        }
        if !Validation.isValidName(body.zone) { errors.append(.init(field: "zone", message: "use 1-63 lowercase letters, digits or '-'")) }
        if let agentID = body.target.agentId, !Validation.isValidID(agentID) {
            errors.append(.init(field: "target.agentId", message: "is not an agent id"))
        }
        if body.target.kind == .agent && body.target.agentId == nil {
            errors.append(.init(field: "target.agentId", message: "is required when target.kind is 'agent'"))
        }
        if body.target.kind != .agent && body.target.agentId != nil {
            errors.append(.init(field: "target.agentId", message: "only goes with target.kind 'agent'"))
        }
        if body.target.kind == .selector {
            do {
                _ = try selector(body.target)
            } catch {
                if case .invalid(let fields) = error { errors += fields }
            }
        } else {
            if body.target.selector != nil { errors.append(.init(field: "target.selector", message: "only goes with target.kind 'selector'")) }
            if body.target.allZones != nil { errors.append(.init(field: "target.allZones", message: "only goes with target.kind 'selector'")) }
        }
        do {
            _ = try RolloutPolicy(maxConcurrency: body.maxConcurrency, maxErrors: body.maxErrors)
        } catch {
            errors.append(.init(field: "rollout.\(error.field)", message: error.message))
        }
        if !errors.isEmpty { throw ServiceError.invalid(errors) }
    }

    /// A task's name when none is given: the first line of its first step's script, or the command's name.
    static func defaultName(_ step: StepSpec) -> String {
        if let command = step.command { return String(command.prefix(64)) }
        return String(step.script?.split(separator: "\n").first?.prefix(60) ?? "task")
    }

    /// What is wrong with a step's kind: a script or a known built-in command with valid arguments,
    /// checked against the command's parameter schema (`GET /api/v1/commands`).
    static func commandProblems(_ step: StepSpec, field: String) -> [ProblemDocument.FieldError] {
        switch (step.script, step.command) {
        case (nil, nil): return [.init(field: field, message: "needs a script or a command")]
        case (.some, .some): return [.init(field: field, message: "has a script and a command; give one")]
        case (.some, nil):
            return step.args == nil ? [] : [.init(field: field + ".args", message: "only goes with a command")]
        case (nil, .some(let name)):
            guard let command = BuiltinCommands.named(name) else {
                return [
                    .init(
                        field: field + ".command",
                        message: "is not a built-in command (\(BuiltinCommands.all.map(\.name.rawValue).joined(separator: ", ")))")
                ]
            }
            let args: JSONValue?
            do {
                args = try step.args.map { try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode($0)) }
            } catch {
                return [.init(field: field + ".args", message: "must be a JSON object")]
            }
            return command.problems(with: args).map {
                .init(field: $0.field.isEmpty ? field + ".args" : field + ".args." + $0.field, message: $0.message)
            }
        }
    }

    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
