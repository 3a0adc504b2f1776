import Logging
import Foundation
import Hummingbird
import KlevrAPI
import KlevrCore
import KlevrStore
import NIOCore

extension Manager {
    func addRunRoutes(to router: Router<KlevrRequestContext>) {
        router.get("/api/v1/runs") { request, context in
            _ = try context.requireUser()
            let query = request.uri.queryParameters
            var filter = RunFilter()
            if let task = query["task"] {
                guard Validation.isValidID(String(task)) else { throw Problem.invalid("task", "is not a task id") }
                filter.taskID = String(task)
            }
            if let agent = query["agent"] {
                guard Validation.isValidID(String(agent)) else { throw Problem.invalid("agent", "is not an agent id") }
                filter.agentID = String(agent)
            }
            if let zone = query["zone"] { filter.zoneName = String(zone) }
            if let status = query["status"] {
                guard let value = RunStatus(rawValue: String(status)) else {
                    throw Problem.invalid("status", "one of \(RunStatus.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                filter.status = value
            }
            let limit = try Self.pageLimit(request)
            let runs = try await store.runs(filter, after: try Self.cursor(request), limit: limit)
            let next = runs.count == limit ? runs.last.map { Cursor(createdAt: $0.createdAt, id: $0.id).text } : nil
            return try JSONBody.response(Page(items: runs.map(Self.view), nextCursor: next))
        }
        router.get("/api/v1/runs/{id}") { _, context in
            _ = try context.requireUser()
            return try JSONBody.response(Self.view(try await run(context)))
        }
        router.post("/api/v1/runs/{id}/cancel") { _, context in
            _ = try context.requireUser()
            let run = try await store.cancelRun(id: try Self.id(context), now: Clock.nowMillis(), actor: context.actor)
            await hub.signal([Self.agentKey(run.agentID), Self.runKey(run.id), Self.zoneKey(run.zoneID)])
            return try JSONBody.response(Self.view(run))
        }
        router.get("/api/v1/runs/{id}/logs") { request, context in
            _ = try context.requireUser()
            let run = try await run(context)
            var after: Int64 = 0
            if let text = request.uri.queryParameters["after"] {
                guard let value = Int64(String(text)), value >= 0 else { throw Problem.invalid("after", "must be an integer >= 0") }
                after = value
            }
            let start = after
            let follow = try Self.flag(request, "follow")
                || request.headers[.accept]?.contains("text/event-stream") == true
            if !follow {
                let logs = try await store.logs(runID: run.id, after: after, limit: 100_000)
                return try JSONBody.response(LogPage(items: logs.map(Self.view), status: run.status))
            }
            return Response(
                status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                body: ResponseBody { writer in
                    try await streamLogs(runID: run.id, after: start, to: &writer)
                    try await writer.finish(nil)
                })
        }
    }

    /// Writes a run's log as Server-Sent Events (`log` events, then one `end` event with the final
    /// status), following it live until the run ends or the client goes away.
    func streamLogs(runID: String, after: Int64, to writer: inout any ResponseBodyWriter) async throws {
        let key = Self.runKey(runID)
        var last = after
        let encoder = JSONEncoder()
        while !Task.isCancelled {
            let version = await hub.version(key)
            let logs = try await store.logs(runID: runID, after: last, limit: 1000)
            for chunk in logs {
                let data = String(decoding: try encoder.encode(Self.view(chunk)), as: UTF8.self)
                try await writer.write(ByteBuffer(string: "id: \(chunk.seq)\nevent: log\ndata: \(data)\n\n"))
                last = chunk.seq
            }
            if logs.count == 1000 { continue }
            guard let run = try await store.run(id: runID) else { return }
            if run.status.isTerminal {
                // Chunks that arrived with the result were stored in the same transaction; one more read
                // catches any that landed between the two reads above.
                let tail = try await store.logs(runID: runID, after: last, limit: 100_000)
                for chunk in tail {
                    let data = String(decoding: try encoder.encode(Self.view(chunk)), as: UTF8.self)
                    try await writer.write(ByteBuffer(string: "id: \(chunk.seq)\nevent: log\ndata: \(data)\n\n"))
                }
                let end = String(decoding: try encoder.encode(Self.view(run)), as: UTF8.self)
                try await writer.write(ByteBuffer(string: "event: end\ndata: \(end)\n\n"))
                return
            }
            if await !hub.wait(key, since: version, seconds: 15) {
                try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
            }
        }
    }

    func run(_ context: KlevrRequestContext) async throws -> RunRecord {
        let id = try Self.id(context)
        guard let run = try await store.run(id: id) else { throw Problem.notFound("no run \(id)") }
        return run
    }

    static func view(_ log: LogRecord) -> LogChunkView {
        LogChunkView(seq: log.seq, stream: log.stream, data: log.data, at: log.at)
    }
}
