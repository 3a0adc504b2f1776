/// The agent asked to stop by a built-in command (`agent.restart`, `agent.shutdown`): thrown out of
/// ``AgentService/run()`` once the command's result is reported (or kept in the outbox), so that `main`
/// exits with ``status``.
public struct AgentExit: Error, Sendable, CustomStringConvertible {
    /// The process's exit status: ``BuiltinCommands/restartExitStatus`` for a restart, 0 for a shutdown.
    public var status: Int32
    public var reason: String
    public var description: String { reason }
}

/// Whether the agent takes new runs, and whether a built-in command asked it to stop.
actor AgentLifecycle {
    /// No new run is taken (a graceful shutdown waits for the running ones).
    private(set) var draining = false
    private(set) var exit: AgentExit?

    func drain() { draining = true }

    /// Takes runs again (a graceful shutdown that was canceled while it waited).
    func resume() {
        if exit == nil { draining = false }
    }

    func requestExit(_ exit: AgentExit) {
        draining = true
        if self.exit == nil { self.exit = exit }
    }
}
