import Synchronization

/// Limits how many runs execute at once (`--max-runs`); the others wait their turn, started in the
/// order they asked.
///
/// A lock rather than an actor, so that a cancelled waiter leaves the queue synchronously in its
/// cancellation handler.
public final class RunSlots: Sendable {
    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var free: Int
        var waiters: [Waiter] = []
        var nextID: UInt64 = 0
    }

    private let state: Mutex<State>

    /// - Parameter limit: how many runs may execute at once; at least 1.
    public init(limit: Int) {
        state = Mutex(State(free: max(1, limit)))
    }

    /// Waits for a free slot, behind those who asked before. Each successful call must be paired with
    /// one ``release()``.
    /// - Throws: `CancellationError` when the task is cancelled before it got a slot (it then holds none).
    public func acquire() async throws {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                enum Decision { case granted, canceled, queued }
                let decision = state.withLock { state -> Decision in
                    // Checked under the lock: a cancellation handler that ran before found nothing to remove.
                    if Task.isCancelled { return .canceled }
                    if state.free > 0 && state.waiters.isEmpty {
                        state.free -= 1
                        return .granted
                    }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return .queued
                }
                switch decision {
                case .granted: continuation.resume()
                case .canceled: continuation.resume(throwing: CancellationError())
                case .queued: break
                }
            }
        } onCancel: {
            let removed = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index).continuation
            }
            removed?.resume(throwing: CancellationError())
        }
    }

    /// Gives a slot back: to the longest waiter, or to the pool.
    public func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            if state.waiters.isEmpty {
                state.free += 1
                return nil
            }
            return state.waiters.removeFirst().continuation
        }
        next?.resume()
    }

    /// How many runs wait for a slot (for tests and diagnostics).
    public var waiting: Int { state.withLock { $0.waiters.count } }

    /// Runs `body` once a slot is free, then gives the slot back. A run stopped while it waits (a
    /// cancel order, shutdown) stops waiting and runs `body` without a slot at once: the executor
    /// then reports the stop without starting anything.
    public func withSlot<Value>(unlessStopped control: RunControl, _ body: () async -> Value) async -> Value {
        let holdsSlot = await acquire(unlessStopped: control)
        let value = await body()
        if holdsSlot { release() }
        return value
    }

    /// Waits for a slot or for the run to be stopped, whichever comes first; true when it holds a slot.
    func acquire(unlessStopped control: RunControl) async -> Bool {
        if await control.stopReason != nil { return false }
        return await withTaskGroup(of: Bool.self) { race in
            race.addTask {
                do {
                    try await self.acquire()
                    return true
                } catch { return false }
            }
            race.addTask {
                _ = await control.stopped()
                return false
            }
            let first = await race.next() ?? false
            race.cancelAll()
            if first { return true }
            // Stopped first; the slot may still have been granted before the cancellation arrived.
            while let other = await race.next() {
                if other { release() }
            }
            return false
        }
    }
}
