/// The lifecycle state of one run (one execution of a task on one agent).
///
/// The mapping to the original Klevr's statuses is documented in `docs/tasks.md`.
public enum RunStatus: String, Codable, Sendable, CaseIterable {
    /// Stored by the manager, not yet handed to the agent.
    case queued
    /// Handed to the agent in a sync answer; the agent has not reported a start yet.
    case dispatched
    /// The agent reported that it started the run.
    case running
    case succeeded
    case failed
    /// The run exceeded its step or total timeout and its process group was killed.
    case timedOut = "timed_out"
    case canceled

    /// Whether no further transition is possible.
    public var isTerminal: Bool {
        switch self {
        case .queued, .dispatched, .running: false
        case .succeeded, .failed, .timedOut, .canceled: true
        }
    }
}

/// The final outcome an agent reports for a run.
public enum RunOutcome: String, Codable, Sendable, CaseIterable {
    case succeeded
    case failed
    case timedOut = "timed_out"
    case canceled

    /// The run status this outcome leads to.
    public var status: RunStatus {
        switch self {
        case .succeeded: .succeeded
        case .failed: .failed
        case .timedOut: .timedOut
        case .canceled: .canceled
        }
    }
}
