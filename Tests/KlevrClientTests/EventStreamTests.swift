import Foundation
import OpenAPIRuntime
import Testing

@testable import KlevrClient

/// Reading Server-Sent Events: the bound on bytes without an event boundary, and following a stream
/// across broken connections from the last event id.
@Suite struct EventStreamTests {
    @Test func blankLinesEndEventsWhateverTheLineEndings() {
        var boundary = EventBoundary()
        func feed(_ text: String, limit: Int) -> Bool { boundary.consume(ArraySlice(Array(text.utf8)), limit: limit) }
        #expect(feed("data: 1234\n\n", limit: 11))
        #expect(boundary.pending == 0)
        #expect(feed("id: 1\r\ndata: x\r\n\r\n", limit: 20))
        #expect(boundary.pending == 0)
        // A CRLF is one line end, not a blank line.
        #expect(feed("ab\r\ncd", limit: 20))
        #expect(boundary.pending == 5)
        #expect(!feed("0123456789012345", limit: 20))
        // The limit counts the bytes since the last blank line, the line ends included.
        boundary = EventBoundary()
        #expect(feed("data: 1234\n", limit: 11))
        #expect(!feed("x", limit: 11))
    }

    @Test func aStreamWithoutEventBoundariesIsRefused() async throws {
        let body = HTTPBody(String(repeating: "data: x\n", count: 200))
        await #expect(throws: EventStreamTooLong.self) {
            for try await _ in body.serverSentEvents(limit: 1000) {}
        }
        var seen: [String] = []
        for try await event in HTTPBody("id: 7\nevent: log\ndata: {\"a\":1}\n\n").serverSentEvents(limit: 1000) {
            seen.append("\(event.id ?? "-") \(event.event ?? "-") \(event.data ?? "-")")
        }
        #expect(seen == [#"7 log {"a":1}"#])
    }

    @Test func aBrokenStreamIsOpenedAgainAfterTheLastEventHandled() async throws {
        var opened: [String?] = []
        var handled: [String] = []
        let streams = ["id: 1\ndata: a\n\nid: 2\ndata: b\n\n", "id: 3\ndata: c\n\nid: 4\ndata: d\n\n"]
        try await EventStreamFollower(attempts: 3, backoff: .zero).follow { lastID in
            opened.append(lastID)
            return HTTPBody(streams[min(opened.count - 1, streams.count - 1)])
        } handle: { event in
            handled.append(event.data ?? "")
            return event.id != "3"
        }
        #expect(opened == [nil, "2"])
        #expect(handled == ["a", "b", "c"])
    }

    @Test func aRefusalEndsTheFollowAndEndlessClosingGivesUp() async throws {
        // (Keep-alive comments are not events: they do not count as progress.)
        var opens = 0
        await #expect(throws: ManagerRefusal.self) {
            try await EventStreamFollower(attempts: 5, backoff: .zero).follow { _ in
                opens += 1
                throw ManagerRefusal(status: 403, problem: nil, body: "")
            } handle: { _ in true }
        }
        #expect(opens == 1)

        opens = 0
        await #expect(throws: EventStreamFollower.StreamEnded.self) {
            try await EventStreamFollower(attempts: 2, backoff: .zero).follow { _ in
                opens += 1
                return HTTPBody(": keep-alive\n\n")
            } handle: { _ in true }
        }
        #expect(opens == 3)
    }

    @Test func theHandlersErrorEndsTheFollowAsItIs() async throws {
        struct Stop: Error {}
        var opens = 0
        await #expect(throws: Stop.self) {
            try await EventStreamFollower(attempts: 5, backoff: .zero).follow { _ in
                opens += 1
                return HTTPBody("data: x\n\n")
            } handle: { _ in throw Stop() }
        }
        #expect(opens == 1)
    }
}
