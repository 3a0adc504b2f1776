/// Why a run's processes were stopped early.
public enum StopReason: Sendable, Equatable {
    case timedOut
    case canceled
    case shutdown
}

/// Lets the agent stop a run that is executing (cancel order, shutdown).
public actor RunControl {
    private var reason: StopReason?
    private var waiters: [CheckedContinuation<StopReason?, Never>] = []

    public init() {}

    /// Asks the run to stop; the first reason wins.
    public func stop(_ why: StopReason) {
        guard reason == nil else { return }
        reason = why
        for waiter in waiters { waiter.resume(returning: why) }
        waiters.removeAll()
    }

    /// The reason, once the run was asked to stop.
    public var stopReason: StopReason? { reason }

    /// Waits until the run is asked to stop; nil when the waiting task is cancelled first.
    func stopped() async -> StopReason? {
        if let reason { return reason }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if let reason {
                    continuation.resume(returning: reason)
                } else {
                    waiters.append(continuation)
                }
            }
        } onCancel: {
            Task { await self.releaseWaiters() }
        }
    }

    private func releaseWaiters() {
        guard reason == nil else { return }
        for waiter in waiters { waiter.resume(returning: nil) }
        waiters.removeAll()
    }
}
