import OpenAPIRuntime

/// The bytes of a Server-Sent Events stream, refused once more than `limit` of them arrive without an
/// event boundary (a blank line): a stream that sends none is not SSE, and the decoder would buffer it
/// without bound.
public struct EventStreamBytes<Upstream: AsyncSequence & Sendable>: AsyncSequence, Sendable
where Upstream.Element == ArraySlice<UInt8> {
    public typealias Element = ArraySlice<UInt8>

    let upstream: Upstream
    let limit: Int

    public init(_ upstream: Upstream, limit: Int) {
        self.upstream = upstream
        self.limit = limit
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var upstream: Upstream.AsyncIterator
        let limit: Int
        var boundary = EventBoundary()

        public mutating func next() async throws -> ArraySlice<UInt8>? {
            guard let chunk = try await upstream.next() else { return nil }
            guard boundary.consume(chunk, limit: limit) else { throw EventStreamTooLong(limit: limit) }
            return chunk
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(upstream: upstream.makeAsyncIterator(), limit: limit)
    }
}

/// More bytes than the limit arrived on an event stream without a blank line.
public struct EventStreamTooLong: Error, CustomStringConvertible, Sendable {
    public var limit: Int
    public var description: String { "the event stream sent more than \(limit) bytes without an event boundary" }
}

/// Counts the bytes since the last blank line of an SSE stream (`\n\n`, `\r\n\r\n` or `\r\r`).
struct EventBoundary: Sendable {
    /// Bytes since the last blank line.
    private(set) var pending = 0
    /// The previous byte ended a line (a `\r` followed by `\n` ends one line, not two).
    private var atLineStart = true
    private var afterCarriageReturn = false

    /// Takes the next bytes; false when more than `limit` bytes have come without a blank line.
    mutating func consume(_ bytes: ArraySlice<UInt8>, limit: Int) -> Bool {
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\n") where afterCarriageReturn:
                afterCarriageReturn = false
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                if atLineStart { pending = 0 } else { pending += 1 }
                atLineStart = true
                afterCarriageReturn = byte == UInt8(ascii: "\r")
            default:
                pending += 1
                atLineStart = false
                afterCarriageReturn = false
            }
            if pending > limit { return false }
        }
        return true
    }
}

extension AsyncSequence where Self: Sendable, Element == ArraySlice<UInt8> {
    /// The events of this Server-Sent Events stream (OpenAPIRuntime's decoder), refused with
    /// ``EventStreamTooLong`` once `limit` bytes arrive without an event boundary.
    public func serverSentEvents(limit: Int = 8 << 20)
        -> ServerSentEventsDeserializationSequence<ServerSentEventsLineDeserializationSequence<EventStreamBytes<Self>>>
    {
        EventStreamBytes(self, limit: limit).asDecodedServerSentEvents()
    }
}
