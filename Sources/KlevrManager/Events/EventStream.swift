import Foundation
import KlevrAPI
import KlevrCore
import KlevrStore
import OpenAPIRuntime
import ServiceLifecycle

/// The live event log as Server-Sent Events: the bytes of `GET /api/v1/events?follow=true`.
///
/// It starts with a comment line, then sends the events after `after` (`id:` is the event id, `event:`
/// its kind, `data:` the event as JSON with sorted keys), each batch as one chunk, and follows new ones
/// until the client goes away or the manager stops (a graceful shutdown ends the stream); a comment line
/// every 15 s without events keeps proxies from closing.
/// New events are noticed through the store's wake-up hub: the hub's version is read before the store
/// is queried and the wait is for a change after that version, so an event stored between the query
/// and the wait is never missed.
struct EventStream: AsyncSequence, Sendable {
    typealias Element = HTTPBody.ByteChunk

    let store: Store
    let hub: WakeupHub
    let filter: EventFilter
    /// The id after which the stream starts.
    let after: Int64
    /// Whether client addresses are shown.
    let admin: Bool
    /// The most events read at once.
    var batch = 500
    /// The longest quiet time before a keep-alive comment.
    var keepAliveSeconds = 15.0

    func makeAsyncIterator() -> Iterator {
        Iterator(stream: self, last: after)
    }

    struct Iterator: AsyncIteratorProtocol {
        let stream: EventStream
        /// The id of the last event sent.
        var last: Int64
        var started = false
        /// The hub's version read before the last query that found less than a full batch: wait for a
        /// change after it before querying again. Nil after a full batch (query again at once).
        var waitSince: UInt64?
        let encoder: JSONEncoder = {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return encoder
        }()

        mutating func next() async throws -> HTTPBody.ByteChunk? {
            if !started {
                started = true
                return Self.chunk(": following events after \(stream.after)\n\n")
            }
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                if let version = waitSince {
                    waitSince = nil
                    if await !stream.hub.waitUnlessShuttingDown(Store.eventsKey, since: version, seconds: stream.keepAliveSeconds) {
                        // A stopping manager ends the stream; the client reconnects with Last-Event-ID.
                        if Task.isShuttingDownGracefully { return nil }
                        return Self.chunk(": keep-alive\n\n")
                    }
                }
                let version = await stream.hub.version(Store.eventsKey)
                let events = try await stream.store.events(stream.filter, after: last, limit: stream.batch)
                if events.count < stream.batch { waitSince = version }
                guard let newest = events.last else { continue }
                var text = ""
                for event in events {
                    let data = String(decoding: try encoder.encode(ManagerAPI.view(event, admin: stream.admin)), as: UTF8.self)
                    text += "id: \(event.id)\nevent: \(event.kind.rawValue)\ndata: \(data)\n\n"
                }
                last = newest.id
                return Self.chunk(text)
            }
            return nil
        }

        static func chunk(_ text: String) -> HTTPBody.ByteChunk {
            HTTPBody.ByteChunk(text.utf8)
        }
    }
}
