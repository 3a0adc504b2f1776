/// The kinds of typed events: every change of runs, tasks, agents, zones, primaries, enrollment keys,
/// users and tokens appends one, in the same transaction as the change.
///
/// A stored kind this build does not know is an error when read, never mapped to a default.
public enum EventKind: String, Codable, Sendable, CaseIterable {
    case runCreated = "run.created"
    case runDispatched = "run.dispatched"
    case runRedelivered = "run.redelivered"
    case runReleased = "run.released"
    case runStarted = "run.started"
    case runSucceeded = "run.succeeded"
    case runFailed = "run.failed"
    case runTimedOut = "run.timed_out"
    case runCanceled = "run.canceled"
    case runCancelRequested = "run.cancel_requested"
    /// A scheduled run's time came: it is queued.
    case runDue = "run.due"
    /// A step failed and the agent runs the recover steps.
    case runRecovering = "run.recovering"
    case runFailedRecover = "run.failed_recover"
    /// A run not started before its deadline; it never runs.
    case runExpired = "run.expired"
    /// A report or action the run state machine refused (recorded, not silently dropped).
    case runTransitionRefused = "run.transition_refused"

    case taskCreated = "task.created"
    case taskCanceled = "task.canceled"
    /// A recurring task's occurrences fired: its runs were created (detail: the occurrence times).
    case taskFired = "task.fired"
    /// Occurrences of a recurring task that did not run (detail: how many, and why: overlap, missed, no agent).
    case taskSkipped = "task.skipped"
    case taskPaused = "task.paused"
    case taskResumed = "task.resumed"
    /// A fan-out stopped because its errors exceeded `maxErrors`; its runs not started end canceled.
    case taskRolloutStopped = "task.rollout_stopped"

    case agentEnrolled = "agent.enrolled"
    case agentReenrolled = "agent.reenrolled"
    case agentOnline = "agent.online"
    case agentOffline = "agent.offline"
    case agentRetireRequested = "agent.retire_requested"
    case agentRetired = "agent.retired"
    /// A primary relayed a report its member did not sign.
    case agentRelayForgery = "agent.relay_forgery"
    /// An agent's labels were set (through the API or by the agent's `--labels` at enrollment).
    case agentLabelsChanged = "agent.labels_changed"

    case zoneCreated = "zone.created"
    case zoneDeleted = "zone.deleted"

    case primaryElected = "primary.elected"
    case primaryRetired = "primary.retired"

    case enrollKeyCreated = "enroll_key.created"
    case enrollKeyRotated = "enroll_key.rotated"
    case enrollKeyRevoked = "enroll_key.revoked"

    case userCreated = "user.created"
    case userUpdated = "user.updated"
    case userDisabled = "user.disabled"
    case userEnabled = "user.enabled"
    case userDeleted = "user.deleted"
    case userPasswordChanged = "user.password_changed"
    case userLoggedIn = "user.logged_in"
    case userLoggedOut = "user.logged_out"

    case tokenCreated = "token.created"
    case tokenRevoked = "token.revoked"

    case credentialCreated = "credential.created"
    case credentialUpdated = "credential.updated"
    case credentialDeleted = "credential.deleted"

    case webhookCreated = "webhook.created"
    case webhookUpdated = "webhook.updated"
    case webhookDeleted = "webhook.deleted"
    /// A user asked for an event to be delivered again (detail: the delivery it repeats, the event id).
    case webhookRedelivered = "webhook.redelivered"
}

/// Who made a change.
public struct EventActor: Sendable, Equatable, Codable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case user, token, agent, system
    }

    public var kind: Kind
    /// The user, token or agent id (empty for the system).
    public var id: String
    /// A readable name: the user name (for a token, its owner's), the agent's host name.
    public var name: String
    /// The client address the request came from, when there was a request.
    public var address: String?

    public init(kind: Kind, id: String, name: String, address: String? = nil) {
        self.kind = kind
        self.id = id
        self.name = name
        self.address = address
    }

    /// The manager itself (dispatch, redelivery, liveness, lease moves).
    public static let system = EventActor(kind: .system, id: "", name: "system")
}
