import Logging
import Foundation
import Hummingbird
import KlevrAPI
import KlevrCore
import KlevrStore

extension Manager {
    static let maxTimeoutSeconds = 7 * 86400
    static let defaultTimeoutSeconds = 3600

    func addTaskRoutes(to router: Router<KlevrRequestContext>) {
        router.post("/api/v1/tasks") { request, context in
            let user = try context.requireUser(.operator_)
            let body = try await JSONBody.decode(TaskCreateRequest.self, from: request)
            let task = try await createTask(body, by: user, actor: context.actor)
            return try JSONBody.response(task, status: .created)
        }
        router.get("/api/v1/tasks") { request, context in
            _ = try context.requireUser()
            let limit = try Self.pageLimit(request)
            let zone = request.uri.queryParameters["zone"].map(String.init)
            let tasks = try await store.tasks(zoneName: zone, after: try Self.cursor(request), limit: limit)
            var views: [TaskView] = []
            for task in tasks { views.append(try Self.view(task, runs: [])) }
            let next = tasks.count == limit ? tasks.last.map { Cursor(createdAt: $0.createdAt, id: $0.id).text } : nil
            return try JSONBody.response(Page(items: views, nextCursor: next))
        }
        router.get("/api/v1/tasks/{id}") { _, context in
            _ = try context.requireUser()
            return try JSONBody.response(try await taskView(id: try Self.id(context)))
        }
        router.post("/api/v1/tasks/{id}/cancel") { _, context in
            _ = try context.requireUser(.operator_)
            let id = try Self.id(context)
            let agents = try await store.cancelTask(id: id, now: Clock.nowMillis(), actor: context.actor)
            let zoneID = try await store.task(id: id)?.zoneID
            await hub.signal(agents.map(Self.agentKey) + (zoneID.map { [Self.zoneKey($0)] } ?? []))
            let task = try await taskView(id: id)
            await hub.signal(task.runs.map { Self.runKey($0.id) })
            return try JSONBody.response(task)
        }
    }

    func taskView(id: String) async throws -> TaskView {
        guard let task = try await store.task(id: id) else { throw Problem.notFound("no task \(id)") }
        let runs = try await store.runs(RunFilter(taskID: id), after: nil, limit: 100_000)
        return try Self.view(task, runs: runs.map(Self.view))
    }

    /// Validates a task, picks its agents and stores it with one queued run per agent.
    func createTask(_ body: TaskCreateRequest, by user: UserRecord, actor: EventActor) async throws -> TaskView {
        try Self.validate(body)
        // A well-formed reference to something that does not exist is a 404, as for a path.
        guard let zone = try await store.zone(named: body.zone) else { throw Problem.notFound("no zone named '\(body.zone)'") }
        let targets: [AgentRecord]
        switch body.target.kind {
        case .agent:
            // One lookup by id: creating a task for one agent costs the same in a zone of any size.
            guard let agentID = body.target.agentId, let agent = try await store.agent(id: agentID),
                agent.zoneID == zone.id, agent.retiredAt == nil, agent.retireRequestedAt == nil
            else {
                throw Problem.notFound("no active agent with this id in zone '\(zone.name)'")
            }
            targets = [agent]
        case .any:
            guard let agent = try await store.activeAgents(zoneID: zone.id, retiring: false).filter(isOnline).randomElement() else {
                throw Problem.conflict("zone '\(zone.name)' has no online agent")
            }
            targets = [agent]
        case .all:
            let agents = try await store.activeAgents(zoneID: zone.id, retiring: false)
            guard !agents.isEmpty else { throw Problem.conflict("zone '\(zone.name)' has no agents") }
            targets = agents
        }
        let now = Clock.nowMillis()
        let name = body.name ?? String(body.steps[0].script.split(separator: "\n").first?.prefix(60) ?? "task")
        let record = TaskRecord(
            id: Secrets.newID(), name: name, zoneID: zone.id, zoneName: zone.name, targetJSON: try Self.json(body.target),
            stepsJSON: try Self.json(body.steps), paramsJSON: try Self.json(body.params ?? [:]),
            timeoutSeconds: body.timeoutSeconds ?? Self.defaultTimeoutSeconds, createdAt: now, createdBy: user.username, canceledAt: nil)
        _ = try await store.createTask(record, agentIDs: targets.map(\.id), actor: actor)
        await hub.signal(targets.map { Self.agentKey($0.id) } + [Self.zoneKey(zone.id)])
        return try await taskView(id: record.id)
    }

    static func validate(_ body: TaskCreateRequest) throws {
        var errors: [ProblemDocument.FieldError] = []
        if let name = body.name, name.unicodeScalars.count > 200 { errors.append(.init(field: "name", message: "at most 200 characters")) }
        if body.steps.isEmpty || body.steps.count > 50 { errors.append(.init(field: "steps", message: "1 to 50 steps")) }
        var scriptBytes = 0
        for (index, step) in body.steps.enumerated() {
            scriptBytes += step.script.utf8.count
            if Validation.isBlank(step.script) {
                errors.append(.init(field: "steps[\(index)].script", message: "must not be empty"))
            }
            if step.script.unicodeScalars.contains("\0") { errors.append(.init(field: "steps[\(index)].script", message: "must not contain NUL")) }
            if let timeout = step.timeoutSeconds, !(1...maxTimeoutSeconds).contains(timeout) {
                errors.append(.init(field: "steps[\(index)].timeoutSeconds", message: "1 to \(maxTimeoutSeconds)"))
            }
            if let name = step.name, name.unicodeScalars.count > 200 { errors.append(.init(field: "steps[\(index)].name", message: "at most 200 characters")) }
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
        if !errors.isEmpty { throw Problem.invalid(errors) }
    }

    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func view(_ task: TaskRecord, runs: [RunView]) throws -> TaskView {
        let decoder = JSONDecoder()
        return TaskView(
            id: task.id, name: task.name, zone: task.zoneName,
            target: try decoder.decode(TargetSpec.self, from: Data(task.targetJSON.utf8)),
            steps: try decoder.decode([StepSpec].self, from: Data(task.stepsJSON.utf8)),
            params: try decoder.decode([String: String].self, from: Data(task.paramsJSON.utf8)), timeoutSeconds: task.timeoutSeconds,
            createdAt: task.createdAt, createdBy: task.createdBy, canceledAt: task.canceledAt, runs: runs)
    }

    static func view(_ run: RunRecord) -> RunView {
        RunView(
            id: run.id, taskId: run.taskID, agentId: run.agentID, zone: run.zoneName, status: run.status, reason: run.reason,
            exitCode: run.exitCode, result: run.result, cancelRequested: run.cancelRequested, createdAt: run.createdAt,
            dispatchedAt: run.dispatchedAt, startedAt: run.startedAt, finishedAt: run.finishedAt)
    }
}
