import KlevrCore

/// A stored user.
public struct UserRecord: Sendable, Equatable {
    public var id: String
    public var username: String
    public var passwordHash: String
    public var role: Role
    public var createdAt: Int64
    /// When an admin disabled the user; a disabled user cannot log in and has no sessions or tokens.
    public var disabledAt: Int64? = nil
    /// Whether the user must change their password before doing anything else (a generated first-admin password).
    public var mustChangePassword: Bool = false
    /// When the user last changed their own password.
    public var passwordChangedAt: Int64? = nil
}

/// A stored API token (its hash only), with the name of the user it belongs to.
public struct TokenRecord: Sendable, Equatable {
    public var id: String
    public var userID: String
    public var username: String
    public var name: String
    public var createdAt: Int64
    public var lastUsedAt: Int64?
    public var expiresAt: Int64?
}

/// A stored zone with the number of its agents that are not retired.
public struct ZoneRecord: Sendable, Equatable {
    public var id: String
    public var name: String
    public var description: String
    public var createdAt: Int64
    public var agents: Int
}

/// A stored enrollment key (its hash only).
public struct EnrollKeyRecord: Sendable, Equatable {
    public var id: String
    public var zoneID: String
    public var zoneName: String
    public var prefix: String
    public var createdAt: Int64
    public var expiresAt: Int64?
    public var revokedAt: Int64?
}

/// A stored agent.
public struct AgentRecord: Sendable, Equatable {
    public var id: String
    public var zoneID: String
    public var zoneName: String
    public var hostname: String
    public var os: String
    public var version: String
    public var addresses: [String]
    public var publicKey: String
    public var enrolledAt: Int64
    public var lastSeenAt: Int64
    public var retiredAt: Int64?
    /// When retiring it was asked for (it is `retiring` until its runs stopped).
    public var retireRequestedAt: Int64? = nil
    /// Where zone members reach its peer API (`host:port`), empty when unknown.
    public var peerAddress: String
    /// Whether it has reached the manager directly (so it can be elected primary).
    public var managerRoute: Bool
    /// Election priority (higher first).
    public var priority: Int
    /// The agent's X25519 public key (base64); empty for agents enrolled before zone channel v2.
    public var sealKey: String = ""
    /// The agent's wall clock minus the manager's (ms), as last measured.
    public var clockSkewMillis: Int64?
    /// Its labels as they count for selectors: an operator's (``labelsSetBy``) when one set them through
    /// the API, else the ones the agent reported (`--labels`).
    public var labels: [String: String] = [:]
    /// The labels the agent last reported (kept while an operator's labels override them).
    public var reportedLabels: [String: String] = [:]
    /// Who set the labels through the API; nil while the agent's reported labels count.
    public var labelsSetBy: String? = nil
}

/// A stored task (its steps, parameters and target as the operator gave them).
public struct TaskRecord: Sendable, Equatable {
    public var id: String
    public var name: String
    public var zoneID: String
    public var zoneName: String
    public var targetJSON: String
    public var stepsJSON: String
    public var paramsJSON: String
    public var timeoutSeconds: Int
    public var createdAt: Int64
    public var createdBy: String
    public var canceledAt: Int64?
    /// When its runs become due (epoch ms); nil for at once.
    public var runAt: Int64?
    /// How long after they are due its runs may start; nil for no deadline.
    public var deliverWithinSeconds: Int?
    /// A recurring task's schedule and where it stands; nil for a one-off task.
    public var recurrence: RecurrenceRecord?
    /// The rollout limits as written (`3`, `10%`); nil for none.
    public var maxConcurrency: String? = nil
    public var maxErrors: String? = nil
    /// The names of the credentials its runs receive (a zone's credential of that name, else the global one).
    public var credentials: [String] = []
    /// The steps run when a step fails, as JSON (like `stepsJSON`).
    public var recoverJSON = "[]"

    public init(
        id: String, name: String, zoneID: String, zoneName: String, targetJSON: String, stepsJSON: String, paramsJSON: String,
        timeoutSeconds: Int, createdAt: Int64, createdBy: String, canceledAt: Int64?, runAt: Int64? = nil, deliverWithinSeconds: Int? = nil
    ) {
        self.runAt = runAt
        self.deliverWithinSeconds = deliverWithinSeconds
        self.recurrence = nil
        self.id = id
        self.name = name
        self.zoneID = zoneID
        self.zoneName = zoneName
        self.targetJSON = targetJSON
        self.stepsJSON = stepsJSON
        self.paramsJSON = paramsJSON
        self.timeoutSeconds = timeoutSeconds
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.canceledAt = canceledAt
    }
}

/// A recurring task's schedule (as given) and its progress (as the scheduler keeps it).
public struct RecurrenceRecord: Sendable, Equatable {
    public var cron: String
    public var timeZone: String
    public var until: Int64?
    public var maxOccurrences: Int?
    /// `skip` or `queue`.
    public var overlap: String
    /// `none`, `latest` or `all:<limit>`.
    public var catchUp: String
    /// The latest occurrence dealt with (or the start of the schedule).
    public var cursor: Int64
    public var firedCount: Int
    /// The next occurrence, nil when the schedule is finished.
    public var nextFireAt: Int64?
    public var pausedAt: Int64?

    public init(
        cron: String, timeZone: String, until: Int64?, maxOccurrences: Int?, overlap: String, catchUp: String, cursor: Int64, firedCount: Int,
        nextFireAt: Int64?, pausedAt: Int64?
    ) {
        self.cron = cron
        self.timeZone = timeZone
        self.until = until
        self.maxOccurrences = maxOccurrences
        self.overlap = overlap
        self.catchUp = catchUp
        self.cursor = cursor
        self.firedCount = firedCount
        self.nextFireAt = nextFireAt
        self.pausedAt = pausedAt
    }
}

/// A stored run.
public struct RunRecord: Sendable, Equatable {
    public var id: String
    public var taskID: String
    public var agentID: String
    public var zoneID: String
    public var zoneName: String
    public var status: RunStatus
    public var reason: String?
    public var exitCode: Int?
    public var result: String?
    public var cancelRequested: Bool
    public var createdAt: Int64
    public var dispatchedAt: Int64?
    public var startedAt: Int64?
    public var finishedAt: Int64?
    /// When a scheduled run becomes due (epoch ms).
    public var dueAt: Int64?
    /// After this time (epoch ms) the run may no longer start: it ends `expired`.
    public var deliverBy: Int64?
    /// The occurrence of a recurring task this run is for.
    public var occurrence: Int64? = nil
}

/// A stored piece of a run's output.
public struct LogRecord: Sendable, Equatable {
    public var seq: Int64
    public var stream: String
    public var data: String
    public var at: Int64
}

/// A run ready to be handed to its agent, with what the agent needs to execute it.
public struct PendingRun: Sendable, Equatable {
    public var run: RunRecord
    public var task: TaskRecord
}

/// Filters for listing runs.
public struct RunFilter: Sendable {
    public var taskID: String?
    public var agentID: String?
    public var zoneName: String?
    public var status: RunStatus?
    public init(taskID: String? = nil, agentID: String? = nil, zoneName: String? = nil, status: RunStatus? = nil) {
        self.taskID = taskID
        self.agentID = agentID
        self.zoneName = zoneName
        self.status = status
    }
}

/// A position in a newest-first list: the creation time and id of the last item seen.
public struct Cursor: Sendable, Equatable {
    public var createdAt: Int64
    public var id: String

    public init(createdAt: Int64, id: String) {
        self.createdAt = createdAt
        self.id = id
    }

    /// Reads the opaque cursor string of the API; nil when it is not one.
    public init?(_ text: String) {
        let parts = text.split(separator: "_", maxSplits: 1)
        guard parts.count == 2, let createdAt = Int64(parts[0]), Validation.isValidID(String(parts[1])) else { return nil }
        self.createdAt = createdAt
        self.id = String(parts[1])
    }

    /// The opaque cursor string of the API.
    public var text: String { "\(createdAt)_\(id)" }
}

extension TaskRecord {
    /// The task's rollout policy, nil when it has no limit. A stored limit that does not parse is corrupt data.
    public func rolloutPolicy() throws -> RolloutPolicy? {
        guard maxConcurrency != nil || maxErrors != nil else { return nil }
        do {
            return try RolloutPolicy(maxConcurrency: maxConcurrency, maxErrors: maxErrors)
        } catch {
            throw StoreError.corrupt("task \(id) has a stored rollout that does not read: \(error)")
        }
    }

    /// This task with rollout limits.
    public func with(maxConcurrency: String?, maxErrors: String?) -> TaskRecord {
        var copy = self
        copy.maxConcurrency = maxConcurrency
        copy.maxErrors = maxErrors
        return copy
    }

    /// This task with a recurrence.
    public func with(recurrence: RecurrenceRecord?) -> TaskRecord {
        var copy = self
        copy.recurrence = recurrence
        return copy
    }

    public func with(recurrence: RecurrenceRecord?, credentials: [String], recoverJSON: String = "[]") -> TaskRecord {
        var copy = with(recurrence: recurrence)
        copy.credentials = credentials
        copy.recoverJSON = recoverJSON
        return copy
    }
}

/// A credential without its value (which only the master key opens, and only dispatch does).
public struct CredentialRecord: Sendable, Equatable {
    public var id: String
    public var name: String
    /// Its zone; nil for a global credential.
    public var zoneID: String?
    public var zoneName: String?
    public var description: String
    public var createdAt: Int64
    public var createdBy: String
    public var updatedAt: Int64

    public init(
        id: String, name: String, zoneID: String?, zoneName: String?, description: String, createdAt: Int64, createdBy: String, updatedAt: Int64
    ) {
        self.id = id
        self.name = name
        self.zoneID = zoneID
        self.zoneName = zoneName
        self.description = description
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.updatedAt = updatedAt
    }
}
