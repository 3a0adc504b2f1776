import Logging
import Foundation
import Hummingbird
import KlevrAPI
import KlevrCore
import KlevrStore

extension Manager {
    func addTaskRoutes(to router: Router<KlevrRequestContext>) {
        router.post("/api/v1/tasks") { request, context in
            let user = try context.requireUser()
            let body = try await JSONBody.decode(TaskCreateRequest.self, from: request)
            let created = try await tasks.create(body, by: user, actor: context.actor, now: Clock.nowMillis())
            await hub.signal(created.targets.map { Self.agentKey($0.id) } + [Self.zoneKey(created.task.zoneID)])
            return try JSONBody.response(try await taskView(id: created.task.id), status: .created)
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
            _ = try context.requireUser()
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

    /// Task creation, targeting and dispatch policy (no HTTP in it).
    var tasks: TaskService {
        TaskService(store: store, isOnline: { self.isOnline($0) })
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
