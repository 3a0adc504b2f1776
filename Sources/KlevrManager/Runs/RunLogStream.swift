import Foundation
import KlevrAPI
import KlevrCore
import KlevrStore
import OpenAPIRuntime
import ServiceLifecycle

/// A run's log as Server-Sent Events, for `GET /api/v1/runs/{id}/logs?follow=true`: `log` events (data =
/// a LogChunk, id = its seq), then one `end` event whose data is the finished run; a `: keep-alive`
/// comment after 15 s without news. It follows the run live until it ends, the client goes away or the
/// manager stops (a graceful shutdown ends the stream without an `end` event).
///
/// The work happens in the task that reads the stream (the server writing the response), one step per
/// element: no task is spawned, and cancellation (the client left) ends it.
struct RunLogStream: AsyncSequence, Sendable {
    typealias Element = HTTPBody.ByteChunk

    let store: Store
    let hub: WakeupHub
    let runID: String
    /// The chunks with a seq up to this one are not sent.
    let after: Int64

    func makeAsyncIterator() -> Iterator {
        Iterator(stream: self, last: after)
    }

    struct Iterator: AsyncIteratorProtocol {
        /// Where the stream is between two elements.
        enum Step {
            /// Read the version of the run's key, then the log and the run.
            case read
            /// Wait for a signal on the run's key after this version (or 15 s), then read again.
            case wait(since: UInt64)
            case finished
        }

        let stream: RunLogStream
        /// The seq of the last chunk sent.
        var last: Int64
        var step = Step.read
        let encoder = JSONEncoder()

        init(stream: RunLogStream, last: Int64) {
            self.stream = stream
            self.last = last
        }

        mutating func next() async throws -> HTTPBody.ByteChunk? {
            let key = Manager.runKey(stream.runID)
            while true {
                switch step {
                case .finished:
                    return nil
                case .wait(let version):
                    step = .read
                    if await !stream.hub.waitUnlessShuttingDown(key, since: version, seconds: 15) {
                        // A stopping manager ends the stream (without an `end` event: the run goes on).
                        if Task.isShuttingDownGracefully {
                            step = .finished
                            return nil
                        }
                        return Self.bytes(": keep-alive\n\n")
                    }
                case .read:
                    guard !Task.isCancelled else {
                        step = .finished
                        return nil
                    }
                    // The version is read before the store: a chunk stored after the read signals a
                    // later version, so the wait below returns at once and it is not missed.
                    let version = await stream.hub.version(key)
                    let logs = try await stream.store.logs(runID: stream.runID, after: last, limit: 1000)
                    var text = try events(logs)
                    if logs.count == 1000 { return Self.bytes(text) }
                    guard let run = try await stream.store.run(id: stream.runID) else {
                        step = .finished
                        return text.isEmpty ? nil : Self.bytes(text)
                    }
                    if run.status.isTerminal {
                        // Chunks that arrived with the result were stored in the same transaction; one more read
                        // catches any that landed between the two reads above.
                        text += try events(try await stream.store.logs(runID: stream.runID, after: last, limit: 100_000))
                        let end = String(decoding: try encoder.encode(ManagerAPI.view(run)), as: UTF8.self)
                        text += "event: end\ndata: \(end)\n\n"
                        step = .finished
                        return Self.bytes(text)
                    }
                    step = .wait(since: version)
                    if !text.isEmpty { return Self.bytes(text) }
                }
            }
        }

        /// The `log` events of these chunks; `last` moves past them.
        mutating func events(_ logs: [LogRecord]) throws -> String {
            var text = ""
            for chunk in logs {
                let data = String(decoding: try encoder.encode(try ManagerAPI.view(chunk)), as: UTF8.self)
                text += "id: \(chunk.seq)\nevent: log\ndata: \(data)\n\n"
                last = chunk.seq
            }
            return text
        }

        static func bytes(_ text: String) -> HTTPBody.ByteChunk {
            ArraySlice(text.utf8)
        }
    }
}
