import HTTPTypes
import KlevrAPI
import KlevrCore
import KlevrStore
import OpenAPIRuntime

/// Runs: listing, one run, canceling one, and its log (as JSON, or followed live as Server-Sent Events).
extension ManagerAPI {
    func listRuns(_ input: Operations.ListRuns.Input) async throws -> Operations.ListRuns.Output {
        var filter = RunFilter()
        if let task = input.query.task {
            guard Validation.isValidID(task) else { throw Problem.invalid("task", "is not a task id") }
            filter.taskID = task
        }
        if let agent = input.query.agent {
            guard Validation.isValidID(agent) else { throw Problem.invalid("agent", "is not an agent id") }
            filter.agentID = agent
        }
        filter.zoneName = input.query.zone
        filter.status = input.query.status
        let limit = try Self.pageLimit(input.query.limit)
        let runs = try await store.runs(filter, after: try Self.cursor(input.query.cursor), limit: limit)
        let next = runs.count == limit ? runs.last.map { Cursor(createdAt: $0.createdAt, id: $0.id).text } : nil
        return .ok(.init(body: .json(.init(items: runs.map { Self.view($0) }, nextCursor: next))))
    }

    func getRun(_ input: Operations.GetRun.Input) async throws -> Operations.GetRun.Output {
        .ok(.init(body: .json(Self.view(try await run(id: input.path.id)))))
    }

    func cancelRun(_ input: Operations.CancelRun.Input) async throws -> Operations.CancelRun.Output {
        let run = try await store.cancelRun(id: try Self.id(input.path.id), now: Clock.nowMillis(), actor: try context.actor)
        await manager.hub.signal([Manager.agentKey(run.agentID), Manager.runKey(run.id), Manager.zoneKey(run.zoneID)])
        return .ok(.init(body: .json(Self.view(run))))
    }

    func runLogs(_ input: Operations.RunLogs.Input) async throws -> Operations.RunLogs.Output {
        // The run first: a negative `after` on a run that does not exist is a 404 (one that is not an
        // integer was refused by the generated decoding already).
        let run = try await run(id: input.path.id)
        var after: Int64 = 0
        if let value = input.query.after {
            guard value >= 0 else { throw Problem.invalid("after", "must be an integer >= 0") }
            after = value
        }
        // The same rule as the event log: a stream with `follow=true`, or when the Accept header ranks
        // `text/event-stream` above JSON (the generated input lists every type equally when none is sent).
        let streamQuality = EventQuery.quality(of: "text/event-stream", in: input.headers.accept)
        let follow =
            (input.query.follow ?? false)
            || (streamQuality > 0 && streamQuality > EventQuery.quality(of: "application/json", in: input.headers.accept))
        if !follow {
            let logs = try await store.logs(runID: run.id, after: after, limit: 100_000)
            return .ok(.init(body: .json(.init(items: try logs.map { try Self.view($0) }, status: run.status))))
        }
        let stream = RunLogStream(store: store, hub: manager.hub, runID: run.id, after: after)
        return .ok(
            .init(
                headers: .init(cacheControl: "no-cache"),
                body: .textEventStream(HTTPBody(stream, length: .unknown, iterationBehavior: .single))))
    }

    func run(id: String) async throws -> RunRecord {
        let id = try Self.id(id)
        guard let run = try await store.run(id: id) else { throw Problem.notFound("no run \(id)") }
        return run
    }

    // MARK: - Views

    static func view(_ run: RunRecord) -> Components.Schemas.Run {
        .init(
            id: run.id, taskId: run.taskID, agentId: run.agentID, zone: run.zoneName, status: run.status, reason: run.reason,
            exitCode: run.exitCode, result: run.result, cancelRequested: run.cancelRequested, createdAt: run.createdAt,
            dispatchedAt: run.dispatchedAt, startedAt: run.startedAt, finishedAt: run.finishedAt,
            dueAt: run.status == .scheduled || run.dueAt != run.createdAt ? run.dueAt : nil, occurrence: run.occurrence, deliverBy: run.deliverBy)
    }

    /// A chunk of a run's log. Agents' chunks are checked at the sync (stdout, stderr or system), so a
    /// stored stream the document does not list is corrupt data.
    static func view(_ log: LogRecord) throws -> Components.Schemas.LogChunk {
        guard let stream = Components.Schemas.LogChunk.StreamPayload(rawValue: log.stream) else {
            throw StoreError.corrupt("a log chunk (seq \(log.seq)) has a stream the API document does not list: \(log.stream)")
        }
        return .init(seq: Int(log.seq), stream: stream, data: log.data, at: log.at)
    }
}

