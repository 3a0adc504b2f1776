import OpenAPIRuntime

/// Follows a Server-Sent Events stream of the manager across broken connections: after a stream
/// ends or breaks, it opens it again after the id of the last event handled (the `Last-Event-ID` a
/// browser would send; the manager's streams take it as `after`), so that nothing is missed or
/// handled twice.
public struct EventStreamFollower: Sendable {
    /// Reconnections in a row (without an event in between) before giving up.
    public var attempts: Int
    /// The pause before the n-th reconnection in a row is n times this, at most ten times.
    public var backoff: Duration

    public init(attempts: Int = 20, backoff: Duration = .milliseconds(200)) {
        self.attempts = attempts
        self.backoff = backoff
    }

    /// Opens the stream with `open` (given the id of the last event handled, nil at first) and hands
    /// each event to `handle` until it returns false.
    ///
    /// A ``ManagerRefusal`` ends the follow at once (the manager answered, and said no); a broken
    /// connection, or a stream that ends while `handle` still wants more, is opened again.
    /// - Throws: the refusal, `handle`'s error, or the last failure after ``attempts`` reconnections.
    public func follow(
        from lastEventID: String? = nil,
        open: (_ lastEventID: String?) async throws -> HTTPBody,
        handle: (ServerSentEvent) async throws -> Bool
    ) async throws {
        var lastID = lastEventID
        var failures = 0
        while true {
            try Task.checkCancellation()
            var lastFailure: (any Error)?
            do {
                let body = try await open(lastID)
                for try await event in body.serverSentEvents() {
                    if let id = event.id { lastID = id }
                    // The decoder also hands over the blank line after a comment (a keep-alive) as an
                    // event without data, which the SSE rules do not dispatch.
                    guard event.data != nil else { continue }
                    failures = 0
                    let wantsMore: Bool
                    do {
                        wantsMore = try await handle(event)
                    } catch {
                        throw HandlerError(underlying: error)
                    }
                    if !wantsMore { return }
                }
            } catch let error as HandlerError {
                throw error.underlying
            } catch {
                let cause = ManagerClient.cause(of: error)
                if cause is ManagerRefusal || cause is CancellationError || cause is EventStreamTooLong { throw cause }
                lastFailure = cause
            }
            failures += 1
            if failures > attempts {
                throw lastFailure ?? StreamEnded(attempts: attempts)
            }
            try await Task.sleep(for: backoff * min(failures, 10))
        }
    }

    /// The stream kept ending without an error before the handler was done.
    public struct StreamEnded: Error, CustomStringConvertible, Sendable {
        public var attempts: Int
        public var description: String { "the event stream kept closing (\(attempts) times in a row)" }
    }

    /// Carries an error of the handler past the reconnection logic.
    private struct HandlerError: Error {
        var underlying: any Error
    }
}
