/// Something that happens to a run; the state machine decides whether it is allowed.
public enum RunEvent: Sendable, Equatable {
    /// The manager hands the run to its agent.
    case dispatch
    /// The agent reports that it started executing the run.
    case start
    /// The agent reports the final outcome.
    case finish(RunOutcome)
    /// An operator cancels a run that no agent holds yet.
    case cancelQueued
}

/// The one place where run transitions are decided.
///
/// The manager applies every agent report and every operator action through ``apply(_:to:)``;
/// an illegal report is rejected with a ``RunTransitionError`` and never changes the stored run.
public enum RunStateMachine {
    /// What applying an event means for the stored run.
    public enum Decision: Sendable, Equatable {
        /// Move to the given status.
        case transition(to: RunStatus)
        /// The event repeats what is already recorded (an agent re-sent a report): accept it, change nothing.
        case duplicate
    }

    /// Decides the effect of `event` on a run in `status`.
    /// - Throws: ``RunTransitionError`` when the event is not allowed in that state.
    public static func apply(_ event: RunEvent, to status: RunStatus) throws(RunTransitionError) -> Decision {
        switch (status, event) {
        case (.queued, .dispatch): return .transition(to: .dispatched)
        case (.queued, .cancelQueued): return .transition(to: .canceled)
        case (.dispatched, .dispatch): return .duplicate
        case (.dispatched, .start): return .transition(to: .running)
        // A result can arrive in the same batch as (or before) the start report that was lost.
        case (.dispatched, .finish(let outcome)): return .transition(to: outcome.status)
        case (.running, .start): return .duplicate
        case (.running, .finish(let outcome)): return .transition(to: outcome.status)
        case (let terminal, .start) where terminal.isTerminal: return .duplicate
        case (let terminal, .finish(let outcome)) where terminal.isTerminal:
            if terminal == outcome.status { return .duplicate }
            throw RunTransitionError(from: status, event: event)
        default:
            throw RunTransitionError(from: status, event: event)
        }
    }
}

/// A report or action that the run state machine refused.
public struct RunTransitionError: Error, Sendable, Equatable, CustomStringConvertible {
    public let from: RunStatus
    public let event: RunEvent

    public init(from: RunStatus, event: RunEvent) {
        self.from = from
        self.event = event
    }

    public var description: String {
        "a run in state '\(from.rawValue)' cannot take event '\(event)'"
    }
}
