/// Something that happens to a run; the state machine decides whether it is allowed.
public enum RunEvent: Sendable, Equatable {
    /// The manager hands a queued run to its agent.
    case dispatch
    /// The manager hands a dispatched run again, because the agent has not reported its start in time.
    case redeliver
    /// The zone's lease moved to another primary: whatever the old one was handed and no agent started
    /// is due for delivery again now.
    case release
    /// The agent reports that it started executing the run.
    case start
    /// The agent reports the final outcome.
    case finish(RunOutcome)
    /// An operator cancels the run (or its agent is being retired): a queued run ends at once, a
    /// dispatched or running one is marked so that its agent is told to stop it.
    case cancel
    /// The agent was retired without confirming that it stopped the run: the run ends `canceled`.
    case abandon
    /// A scheduled run's time came: it is queued for delivery.
    case due
    /// The agent reports that a step failed and it runs the task's recover steps.
    case recover
    /// The run's `deliverWithin` deadline passed before it started: it ends `expired` and never runs.
    case expire
}

/// The one place where run transitions are decided.
///
/// The manager applies every agent report, every operator action and every change it makes itself
/// (dispatch, redelivery, a lease move, retiring an agent) through ``apply(_:to:)``; the store then writes
/// the change with the old status in the `WHERE` clause. An illegal event is a ``RunTransitionError`` and
/// never changes the stored run.
public enum RunStateMachine {
    /// What applying an event means for the stored run.
    public enum Decision: Sendable, Equatable {
        /// Move to the given status.
        case transition(to: RunStatus)
        /// A change of the run that keeps its status (a redelivery, a cancel request, a release).
        case stay
        /// The event repeats what is already recorded (an agent re-sent a report): accept it, change nothing.
        case duplicate
    }

    /// Decides the effect of `event` on a run in `status`.
    /// - Throws: ``RunTransitionError`` when the event is not allowed in that state.
    public static func apply(_ event: RunEvent, to status: RunStatus) throws(RunTransitionError) -> Decision {
        switch (status, event) {
        case (.scheduled, .due): return .transition(to: .queued)
        case (.queued, .dispatch): return .transition(to: .dispatched)
        case (.dispatched, .redeliver), (.dispatched, .release): return .stay
        case (.scheduled, .cancel), (.queued, .cancel): return .transition(to: .canceled)
        case (.dispatched, .cancel), (.running, .cancel), (.recovering, .cancel): return .stay
        case (.dispatched, .abandon), (.running, .abandon), (.recovering, .abandon): return .transition(to: .canceled)
        // Only a run that has not started expires: one that started runs to its end (or its timeout).
        case (.scheduled, .expire), (.queued, .expire), (.dispatched, .expire): return .transition(to: .expired)
        case (.dispatched, .start): return .transition(to: .running)
        // Reports of one batch are applied in order; a start report may have been lost before a later one.
        case (.dispatched, .recover), (.running, .recover): return .transition(to: .recovering)
        // Only the agent that has not started a run may say that it expired.
        case (.dispatched, .finish(let outcome)): return .transition(to: outcome.status)
        case (.running, .finish(let outcome)) where outcome != .expired: return .transition(to: outcome.status)
        // A recovering run ends in error, whatever its recover steps did.
        case (.recovering, .finish(let outcome)) where outcome != .succeeded && outcome != .expired: return .transition(to: outcome.status)
        case (.running, .start), (.recovering, .start), (.recovering, .recover): return .duplicate
        // A run that ended after recovering may hear its recovery again (a re-sent report).
        case (.failed, .recover), (.failedRecover, .recover), (.timedOut, .recover), (.canceled, .recover): return .duplicate
        // An expired run must never have started: a start report for it is a fault, recorded. The agent's
        // own report that it let the run expire may arrive after the manager expired it.
        case (.expired, .finish(.expired)): return .duplicate
        case (.expired, _): throw RunTransitionError(from: status, event: event)
        case (let terminal, .start) where terminal.isTerminal: return .duplicate
        case (let terminal, .finish(let outcome)) where terminal.isTerminal:
            if terminal == outcome.status { return .duplicate }
            throw RunTransitionError(from: status, event: event)
        default:
            throw RunTransitionError(from: status, event: event)
        }
    }

    /// The event kind recorded for an allowed change (nil for a duplicate, which changes nothing).
    public static func eventKind(_ event: RunEvent, decision: Decision) -> EventKind? {
        switch decision {
        case .duplicate: return nil
        case .stay:
            switch event {
            case .redeliver: return .runRedelivered
            case .release: return .runReleased
            case .cancel: return .runCancelRequested
            default: return nil
            }
        case .transition(let next):
            switch next {
            case .scheduled: return nil
            case .queued: return .runDue
            case .dispatched: return .runDispatched
            case .running: return .runStarted
            case .recovering: return .runRecovering
            case .succeeded: return .runSucceeded
            case .failed: return .runFailed
            case .failedRecover: return .runFailedRecover
            case .timedOut: return .runTimedOut
            case .canceled: return .runCanceled
            case .expired: return .runExpired
            }
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

extension RunEvent: CustomStringConvertible {
    public var description: String {
        switch self {
        case .dispatch: "dispatch"
        case .redeliver: "redeliver"
        case .release: "release"
        case .start: "start"
        case .finish(let outcome): "finish(\(outcome.rawValue))"
        case .cancel: "cancel"
        case .abandon: "abandon"
        case .due: "due"
        case .recover: "recover"
        case .expire: "expire"
        }
    }
}
