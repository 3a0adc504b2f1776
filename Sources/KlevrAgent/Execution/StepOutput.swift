import KlevrCore

/// The I/O shell around ``OutputCoalescer`` for one step: takes pipe reads and clock ticks, and writes
/// the chunks that are due to the outbox, in order.
///
/// Only one caller writes at a time (the *drainer*); a caller that finds a drain in progress queues its
/// chunks and waits for that drain, which takes them along. So chunks keep their order even though
/// the actor is re-entered while the outbox writes, and a fast writer is slowed to the speed of the
/// disk instead of filling memory.
actor StepOutput {
    private let runID: String
    private let outbox: Outbox
    private var coalescer: OutputCoalescer
    private var queue: [OutputCoalescer.Chunk] = []
    private var draining = false
    private var drainWaiters: [CheckedContinuation<Void, Never>] = []
    private var failure: (any Error)?

    private let clock: ManagerClock?

    init(runID: String, outbox: Outbox, coalescer: OutputCoalescer, clock: ManagerClock? = nil) {
        self.clock = clock
        self.runID = runID
        self.outbox = outbox
        self.coalescer = coalescer
    }

    /// One read of a pipe.
    func append(_ bytes: [UInt8], from stream: OutputStream) async throws {
        queue += coalescer.append(bytes, from: stream, at: .now)
        try await drain()
    }

    /// A clock tick: flushes output that waited long enough.
    func tick() async throws {
        queue += coalescer.tick(at: .now)
        try await drain()
    }

    /// The step ended: flushes everything.
    func finish() async throws {
        queue += coalescer.finish()
        try await drain()
    }

    private func drain() async throws {
        if let failure { throw failure }
        if draining {
            await withCheckedContinuation { drainWaiters.append($0) }
            if let failure { throw failure }
            return
        }
        guard !queue.isEmpty else { return }
        draining = true
        while !queue.isEmpty {
            let chunk = queue.removeFirst()
            do {
                try await outbox.appendLog(runID: runID, stream: chunk.stream.chunkStream, data: chunk.text, at: clock?.now() ?? Clock.nowMillis())
            } catch {
                failure = error
                queue.removeAll()
            }
        }
        draining = false
        let waiters = drainWaiters
        drainWaiters.removeAll()
        for waiter in waiters { waiter.resume() }
        if let failure { throw failure }
    }
}
