import KlevrStore
import ServiceLifecycle

extension WakeupHub {
    /// ``WakeupHub/wait(_:since:seconds:)`` that also ends when the manager begins a graceful shutdown
    /// (then it returns false, as a wait that timed out). A stream that a client holds open (the events
    /// stream, a followed run log) checks `Task.isShuttingDownGracefully` after it and ends, so that no
    /// open browser or `klevr run logs -f` keeps a stopping manager from exiting.
    func waitUnlessShuttingDown(_ key: String, since: UInt64, seconds: Double) async -> Bool {
        (try? await cancelWhenGracefulShutdown { await self.wait(key, since: since, seconds: seconds) }) ?? false
    }
}
