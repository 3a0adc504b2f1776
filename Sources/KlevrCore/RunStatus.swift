/// The lifecycle state of one run (one execution of a task on one agent).
///
/// The mapping to the original Klevr's statuses is documented in `docs/tasks.md`.
public enum RunStatus: String, Codable, Sendable, CaseIterable {
    /// Stored for a later time (a `runAt` task before its time): not handed out until it is due.
    case scheduled
    /// Stored by the manager, not yet handed to the agent.
    case queued
    /// Handed to the agent in a sync answer; the agent has not reported a start yet.
    case dispatched
    /// The agent reported that it started the run.
    case running
    /// A step failed and the agent runs the task's recover steps.
    case recovering
    case succeeded
    /// A step failed (its recover steps, if any, ran and succeeded: the reason says which).
    case failed
    /// A step failed and so did a recover step.
    case failedRecover = "failed_recover"
    /// The run exceeded its step or total timeout and its process group was killed.
    case timedOut = "timed_out"
    case canceled
    /// Not started before its `deliverWithin` deadline: it never runs.
    case expired

    /// Whether no further transition is possible.
    public var isTerminal: Bool {
        switch self {
        case .scheduled, .queued, .dispatched, .running, .recovering: false
        case .succeeded, .failed, .failedRecover, .timedOut, .canceled, .expired: true
        }
    }

    /// Whether the run executes on its agent now (started and not ended).
    public var isExecuting: Bool { self == .running || self == .recovering }
}

/// The final outcome an agent reports for a run.
public enum RunOutcome: String, Codable, Sendable, CaseIterable {
    case succeeded
    case failed
    /// A step failed and so did a recover step.
    case failedRecover = "failed_recover"
    case timedOut = "timed_out"
    case canceled
    /// The agent did not start the run: its delivery deadline had passed when it came (or got a slot).
    case expired

    /// The run status this outcome leads to.
    public var status: RunStatus {
        switch self {
        case .succeeded: .succeeded
        case .failed: .failed
        case .failedRecover: .failedRecover
        case .timedOut: .timedOut
        case .canceled: .canceled
        case .expired: .expired
        }
    }
}
