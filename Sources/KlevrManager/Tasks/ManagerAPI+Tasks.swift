import Foundation
import KlevrAPI
import KlevrCore
import KlevrStore
import OpenAPIRuntime

/// Tasks: creating one (validation, targeting and dispatch are ``TaskService``'s), listing, one task
/// with its runs, canceling one.
extension ManagerAPI {
    func listTasks(_ input: Operations.ListTasks.Input) async throws -> Operations.ListTasks.Output {
        let limit = try Self.pageLimit(input.query.limit)
        let tasks = try await store.tasks(zoneName: input.query.zone, after: try Self.cursor(input.query.cursor), limit: limit)
        let next = tasks.count == limit ? tasks.last.map { Cursor(createdAt: $0.createdAt, id: $0.id).text } : nil
        return .ok(.init(body: .json(.init(items: try tasks.map { try Self.view($0, runs: []) }, nextCursor: next))))
    }

    func createTask(_ input: Operations.CreateTask.Input) async throws -> Operations.CreateTask.Output {
        let body: Components.Schemas.TaskCreateRequest
        switch input.body {
        case .json(let json): body = json
        case .yaml(let yaml): body = try await Self.taskRequest(yaml: yaml)
        }
        let context = try context
        var request = try Self.taskRequest(body)
        // A callback URL gets its own secret, answered here only (see ManagerAPI+Webhooks).
        let callbackSecret = try body.callbackUrl.map { url in try taskCallback(url: url) }
        request.callback = callbackSecret?.callback
        let created = try await tasks.create(request, by: try context.requireUser(), actor: context.actor, now: Clock.nowMillis())
        await manager.hub.signal(created.targets.map { Manager.agentKey($0.id) } + [Manager.zoneKey(created.task.zoneID)])
        var answer = try await task(id: created.task.id)
        answer.callbackSecret = callbackSecret?.secret.text
        return .created(.init(body: .json(answer)))
    }

    func runTaskNow(_ input: Operations.RunTaskNow.Input) async throws -> Operations.RunTaskNow.Output {
        let runs = try await tasks.runNow(try Self.id(input.path.id), actor: try context.actor, now: Clock.nowMillis())
        let zones = Set(runs.map(\.zoneID))
        await manager.hub.signal(runs.map { Manager.agentKey($0.agentID) } + zones.map(Manager.zoneKey))
        return .created(.init(body: .json(.init(items: runs.map(Self.view), nextCursor: nil))))
    }

    func pauseTask(_ input: Operations.PauseTask.Input) async throws -> Operations.PauseTask.Output {
        let id = try Self.id(input.path.id)
        guard try await store.pauseTask(id: id, now: Clock.nowMillis(), actor: try context.actor) else {
            _ = try await task(id: id)
            throw Problem.conflict("task \(id) is not a recurring task that runs (one-off, canceled or already paused)")
        }
        return .ok(.init(body: .json(try await task(id: id))))
    }

    func resumeTask(_ input: Operations.ResumeTask.Input) async throws -> Operations.ResumeTask.Output {
        let id = try Self.id(input.path.id)
        guard let stored = try await store.task(id: id) else { throw Problem.notFound("no task \(id)") }
        let now = Clock.nowMillis()
        var next: Int64?
        if let recurrence = stored.recurrence {
            let schedule = try TaskService.schedule(of: recurrence, taskID: id)
            let exhausted = schedule.maxOccurrences.map { recurrence.firedCount >= $0 } ?? false
            next = exhausted ? nil : schedule.cron.nextFireTimes(after: now, count: 1, until: schedule.until).first
        }
        guard try await store.resumeTask(id: id, now: now, nextFireAt: next, actor: try context.actor) else {
            throw Problem.conflict("task \(id) is not a paused recurring task")
        }
        await store.hub.signal([RunScheduler.wakeKey])
        return .ok(.init(body: .json(try await task(id: id))))
    }

    func getTask(_ input: Operations.GetTask.Input) async throws -> Operations.GetTask.Output {
        .ok(.init(body: .json(try await task(id: try Self.id(input.path.id)))))
    }

    func cancelTask(_ input: Operations.CancelTask.Input) async throws -> Operations.CancelTask.Output {
        let id = try Self.id(input.path.id)
        let agents = try await store.cancelTask(id: id, now: Clock.nowMillis(), actor: try context.actor)
        let zoneID = try await store.task(id: id)?.zoneID
        await manager.hub.signal(agents.map(Manager.agentKey) + (zoneID.map { [Manager.zoneKey($0)] } ?? []))
        let task = try await task(id: id)
        await manager.hub.signal(task.runs.map { Manager.runKey($0.id) })
        return .ok(.init(body: .json(task)))
    }

    /// Task creation, targeting and dispatch policy (no HTTP in it).
    var tasks: TaskService {
        TaskService(store: store, isOnline: { [manager] in manager.isOnline($0) })
    }

    /// A task with all its runs.
    func task(id: String) async throws -> Components.Schemas.Task {
        guard let task = try await store.task(id: id) else { throw Problem.notFound("no task \(id)") }
        let runs = try await store.runs(RunFilter(taskID: id), after: nil, limit: 100_000)
        var view = try Self.view(task, runs: runs)
        view.callbackUrl = try await store.taskCallback(taskID: id)?.url
        return view
    }

    // MARK: - The request

    /// A `TaskCreateRequest` sent as YAML (``TaskYAML``): not YAML or not UTF-8 is a 400; not a mapping, a
    /// field the request does not have or a value of the wrong type is a 422 naming it. The body limit
    /// is the API's (``BodyLimitMiddleware`` has read it already; this bounds it again).
    static func taskRequest(yaml body: HTTPBody) async throws -> Components.Schemas.TaskCreateRequest {
        let data: Data
        do {
            data = try await Data(collecting: body, upTo: JSONBody.apiLimit)
        } catch {
            throw Problem.tooLarge(JSONBody.apiLimit)
        }
        guard let text = String(data: data, encoding: .utf8) else { throw Problem.badRequest("the body is not UTF-8 text") }
        do {
            return try TaskYAML.request(from: text)
        } catch {
            switch error {
            case .malformed, .unrepresentable: throw Problem.badRequest("the body \(error.message)")
            case .notMapping, .tooLarge: throw Problem.invalid("body", error.message)
            case .undecodable(let decoding): throw JSONBody.problem(for: decoding)
            case .unknownFields(let names): throw Problem.invalid(names.map { .init(field: $0, message: "is not a field of a task (misspelt?)") })
            }
        }
    }

    /// The task a request asks for, in the service's terms.
    static func taskRequest(_ body: Components.Schemas.TaskCreateRequest) throws -> TaskSpec {
        TaskSpec(
            name: body.name, zone: body.zone, target: try targetSpec(body.target), steps: body.steps,
            params: body.params?.additionalProperties, timeoutSeconds: body.timeoutSeconds, runAt: body.runAt, deliverWithinSeconds: body.deliverWithinSeconds,
            recurrence: body.schedule.map {
                RecurrenceSpec(
                    cron: $0.cron, timeZone: $0.timeZone ?? "UTC", until: $0.until, maxOccurrences: $0.maxOccurrences,
                    overlap: $0.overlap.flatMap { OverlapPolicy(rawValue: $0.rawValue) } ?? .skip, catchUp: $0.catchUp?.rawValue ?? "none",
                    catchUpLimit: $0.catchUpLimit ?? 10)
            }, maxConcurrency: body.rollout?.maxConcurrency, maxErrors: body.rollout?.maxErrors, credentials: body.credentials ?? [],
            recover: body.recover ?? [])
    }

    /// The target a request names. The document's `Target` is a `oneOf` whose generated type keeps `kind`
    /// as any JSON value (and `agentId` as one in the second branch), so their types are checked here,
    /// naming the field as a decoding error would; the rules between them are ``TaskService``'s.
    static func targetSpec(_ target: Components.Schemas.Target) throws -> TaskTarget {
        let kind: (any Sendable)?
        let agentID: String?
        var selector: (any Sendable)?
        var allZones: (any Sendable)?
        switch target {
        case .case1(let target):
            kind = target.kind.value
            agentID = target.agentId
            selector = target.selector?.value
            allZones = target.allZones?.value
        case .case2(let target):
            kind = target.kind?.value
            switch target.agentId?.value {
            case nil: agentID = nil
            case let text as String: agentID = text
            default: throw Problem.invalid("target.agentId", "must be a string")
            }
            selector = target.selector?.value
            allZones = target.allZones?.value
        case .case3(let target):
            kind = target.kind.value
            agentID = target.agentId?.value.map { "\($0)" }
            selector = target.selector
            allZones = target.allZones
        }
        guard let kind else { throw Problem.invalid("target.kind", "is required") }
        guard let text = kind as? String else { throw Problem.invalid("target.kind", "must be a string") }
        guard let value = TaskTarget.Kind(rawValue: text) else { throw Problem.invalid("target.kind", "must be agent, any, all or selector") }
        if selector != nil, !(selector is String) { throw Problem.invalid("target.selector", "must be a string") }
        if allZones != nil, !(allZones is Bool) { throw Problem.invalid("target.allZones", "must be true or false") }
        return TaskTarget(kind: value, agentId: agentID, selector: selector as? String, allZones: allZones as? Bool)
    }

    // MARK: - Views

    /// A task as the API shows it. Its target, steps and parameters are stored as the JSON of the
    /// service's types (``TaskService``); one that does not decode is corrupt data, not a default.
    static func view(_ task: TaskRecord, runs: [RunRecord]) throws -> Components.Schemas.Task {
        func stored<T: Decodable>(_ type: T.Type, _ json: String, _ what: String) throws -> T {
            do {
                return try JSONDecoder().decode(type, from: Data(json.utf8))
            } catch {
                throw StoreError.corrupt("task \(task.id) has stored \(what) that do not decode: \(error)")
            }
        }
        let target = try stored(TaskTarget.self, task.targetJSON, "a target")
        let steps = try stored([StepSpec].self, task.stepsJSON, "steps")
        let params = try stored([String: String].self, task.paramsJSON, "parameters")
        return .init(
            id: task.id, name: task.name, zone: task.zoneName, target: try view(target),
            steps: steps,
            params: .init(additionalProperties: params), timeoutSeconds: task.timeoutSeconds, createdAt: task.createdAt,
            createdBy: task.createdBy, canceledAt: task.canceledAt, runAt: task.runAt, deliverWithinSeconds: task.deliverWithinSeconds,
            credentials: task.credentials.isEmpty ? nil : task.credentials,
            recover: try { let steps = try stored([StepSpec].self, task.recoverJSON, "recover steps"); return steps.isEmpty ? nil : steps }(),
            schedule: try task.recurrence.map { recurrence in
                .init(
                    cron: recurrence.cron, timeZone: recurrence.timeZone, until: recurrence.until, maxOccurrences: recurrence.maxOccurrences,
                    overlap: .init(rawValue: recurrence.overlap) ?? .skip, catchUp: recurrence.catchUp, firedCount: recurrence.firedCount,
                    paused: recurrence.pausedAt != nil, nextFireTimes: try TaskService.nextFireTimes(of: task, count: 5))
            },
            rollout: task.maxConcurrency == nil && task.maxErrors == nil ? nil : .init(maxConcurrency: task.maxConcurrency, maxErrors: task.maxErrors),
            runs: runs.map { Self.view($0) })
    }

    static func view(_ target: TaskTarget) throws -> Components.Schemas.Target {
        let kind = try OpenAPIValueContainer(unvalidatedValue: target.kind.rawValue)
        if let selector = target.selector { return .case3(.init(kind: kind, selector: selector, allZones: target.allZones)) }
        guard let agentID = target.agentId else { return .case2(.init(kind: kind)) }
        return .case1(.init(kind: kind, agentId: agentID))
    }
}
