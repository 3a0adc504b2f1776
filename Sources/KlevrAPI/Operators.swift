import KlevrCore

// Request and response bodies of the operator API (`/api/v1`), as described in `openapi.yaml`.
// The manager decodes requests and encodes responses with these types; the CLI does the reverse.

/// `POST /api/v1/auth/login`.
public struct LoginRequest: Codable, Sendable {
    public var username: String
    public var password: String
    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }
}

/// The answer to a login: who you are and the CSRF token for cookie-authenticated writes.
public struct LoginResponse: Codable, Sendable {
    public var user: UserView
    public var csrfToken: String
    /// True when the password must be changed (`POST /api/v1/me/password`) before anything else.
    public var passwordChangeRequired: Bool
    public init(user: UserView, csrfToken: String, passwordChangeRequired: Bool = false) {
        self.user = user
        self.csrfToken = csrfToken
        self.passwordChangeRequired = passwordChangeRequired
    }
}

/// A user, without any secret.
public struct UserView: Codable, Sendable {
    public var id: String
    public var username: String
    public var role: Role
    public var createdAt: Int64
    /// When an admin disabled the user (absent: enabled).
    public var disabledAt: Int64?
    /// True until a generated first-admin password has been changed.
    public var passwordChangeRequired: Bool
    /// When the user last changed their password.
    public var passwordChangedAt: Int64?
    public init(
        id: String, username: String, role: Role, createdAt: Int64, disabledAt: Int64? = nil, passwordChangeRequired: Bool = false,
        passwordChangedAt: Int64? = nil
    ) {
        self.id = id
        self.username = username
        self.role = role
        self.createdAt = createdAt
        self.disabledAt = disabledAt
        self.passwordChangeRequired = passwordChangeRequired
        self.passwordChangedAt = passwordChangedAt
    }
}

/// `POST /api/v1/users` (admin).
public struct UserCreateRequest: Codable, Sendable {
    public var username: String
    public var password: String
    public var role: Role
    public init(username: String, password: String, role: Role) {
        self.username = username
        self.password = password
        self.role = role
    }
}

/// `PUT /api/v1/users/{username}/role` (admin).
public struct UserRoleRequest: Codable, Sendable {
    public var role: Role
    public init(role: Role) { self.role = role }
}

/// `POST /api/v1/me/password`: the caller's own password change.
public struct PasswordChangeRequest: Codable, Sendable {
    public var currentPassword: String
    public var newPassword: String
    public init(currentPassword: String, newPassword: String) {
        self.currentPassword = currentPassword
        self.newPassword = newPassword
    }
}

/// `POST /api/v1/tokens`: a new API token for the calling user, optionally expiring (`expiresInDays` or
/// `expiresAt`, not both; at most 365 days ahead).
public struct TokenCreateRequest: Codable, Sendable {
    public var name: String
    /// Days until the token expires (1 to 365); none: it does not expire.
    public var expiresInDays: Int?
    public init(name: String, expiresInDays: Int? = nil) {
        self.name = name
        self.expiresInDays = expiresInDays
    }
}

/// The one answer that contains a token's value.
public struct TokenCreated: Codable, Sendable {
    public var id: String
    public var name: String
    public var token: String
    public var createdAt: Int64
    public var expiresAt: Int64?
    public init(id: String, name: String, token: String, createdAt: Int64, expiresAt: Int64? = nil) {
        self.id = id
        self.name = name
        self.token = token
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}

/// An API token as listed: never its value.
public struct TokenView: Codable, Sendable {
    public var id: String
    public var name: String
    /// The user name of the token's owner.
    public var owner: String
    public var createdAt: Int64
    /// The last use, to the minute.
    public var lastUsedAt: Int64?
    public var expiresAt: Int64?
    public init(id: String, name: String, owner: String, createdAt: Int64, lastUsedAt: Int64?, expiresAt: Int64?) {
        self.id = id
        self.name = name
        self.owner = owner
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
        self.expiresAt = expiresAt
    }
}

/// `POST /api/v1/zones`.
public struct ZoneCreateRequest: Codable, Sendable {
    public var name: String
    public var description: String?
    public init(name: String, description: String? = nil) {
        self.name = name
        self.description = description
    }
}

/// A zone.
public struct ZoneView: Codable, Sendable {
    public var id: String
    public var name: String
    public var description: String
    public var createdAt: Int64
    public var agents: Int
    /// The agent holding the zone's primary lease, while the lease is unexpired.
    public var primary: String?
    /// The zone's current lease epoch (0: never elected).
    public var epoch: Int64
    public init(id: String, name: String, description: String, createdAt: Int64, agents: Int, primary: String? = nil, epoch: Int64 = 0) {
        self.id = id
        self.name = name
        self.description = description
        self.createdAt = createdAt
        self.agents = agents
        self.primary = primary
        self.epoch = epoch
    }
}

/// Who made a change: a user (session), an API token, an agent or the manager itself.
public struct ActorView: Codable, Sendable, Equatable {
    /// `user`, `token`, `agent` or `system`.
    public var kind: String
    public var id: String
    public var name: String
    /// The client address (shown to admins only).
    public var address: String?
    public init(kind: String, id: String, name: String, address: String?) {
        self.kind = kind
        self.id = id
        self.name = name
        self.address = address
    }
}

/// A typed event: one change of a run, task, agent, zone, primary, enrollment key, user or token.
public struct EventView: Codable, Sendable {
    /// Monotonic: a later change has a larger id.
    public var id: Int64
    /// e.g. `run.started`, `primary.elected` (see `docs/architecture.md`).
    public var kind: String
    public var at: Int64
    public var actor: ActorView
    /// The zone's id, when the change belongs to one.
    public var zoneId: String?
    /// The zone's name, while the zone exists.
    public var zone: String?
    /// The id of what changed (a run, an agent, a user …).
    public var subject: String
    public var detail: [String: String]
    public init(
        id: Int64, kind: String, at: Int64, actor: ActorView, zoneId: String?, zone: String?, subject: String, detail: [String: String]
    ) {
        self.id = id
        self.kind = kind
        self.at = at
        self.actor = actor
        self.zoneId = zoneId
        self.zone = zone
        self.subject = subject
        self.detail = detail
    }
}

/// `POST /api/v1/zones/{zone}/enroll-keys`.
public struct EnrollKeyCreateRequest: Codable, Sendable {
    /// Seconds until the key expires; none means it does not expire.
    public var expiresInSeconds: Int64?
    public init(expiresInSeconds: Int64? = nil) { self.expiresInSeconds = expiresInSeconds }
}

/// The one answer that contains an enrollment key's value (creation or rotation).
public struct EnrollKeyCreated: Codable, Sendable {
    public var id: String
    public var zone: String
    public var key: String
    public var expiresAt: Int64?
    public init(id: String, zone: String, key: String, expiresAt: Int64?) {
        self.id = id
        self.zone = zone
        self.key = key
        self.expiresAt = expiresAt
    }
}

/// An enrollment key as listed: never its value, only the first characters to recognise it.
public struct EnrollKeyView: Codable, Sendable {
    public var id: String
    public var zone: String
    public var prefix: String
    public var createdAt: Int64
    public var expiresAt: Int64?
    public var revokedAt: Int64?
    public init(id: String, zone: String, prefix: String, createdAt: Int64, expiresAt: Int64?, revokedAt: Int64?) {
        self.id = id
        self.zone = zone
        self.prefix = prefix
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }
}

/// An agent as the manager sees it.
public struct AgentView: Codable, Sendable {
    public var id: String
    public var zone: String
    public var hostname: String
    public var os: String
    public var version: String
    public var addresses: [String]
    /// `online`, `offline` or `retired`.
    public var status: String
    /// Why the agent is offline, when it is.
    public var statusReason: String?
    public var lastSeenAt: Int64?
    public var enrolledAt: Int64
    /// The agent's wall clock minus the manager's (ms), as last measured; times shown are the manager's.
    public var clockSkewMillis: Int64?
    public init(
        id: String, zone: String, hostname: String, os: String, version: String, addresses: [String],
        status: String, statusReason: String?, lastSeenAt: Int64?, enrolledAt: Int64, clockSkewMillis: Int64? = nil
    ) {
        self.clockSkewMillis = clockSkewMillis
        self.id = id
        self.zone = zone
        self.hostname = hostname
        self.os = os
        self.version = version
        self.addresses = addresses
        self.status = status
        self.statusReason = statusReason
        self.lastSeenAt = lastSeenAt
        self.enrolledAt = enrolledAt
    }
}

/// Where a task runs.
public struct TargetSpec: Codable, Sendable, Equatable {
    /// How agents are chosen.
    public enum Kind: String, Codable, Sendable {
        /// One named agent (`agentId`).
        case agent
        /// One online agent of the zone, chosen by the manager.
        case any
        /// Every agent of the zone that is not retired.
        case all
    }
    public var kind: Kind
    public var agentId: String?
    public init(kind: Kind, agentId: String? = nil) {
        self.kind = kind
        self.agentId = agentId
    }
}

/// One script step of a task.
public struct StepSpec: Codable, Sendable, Equatable {
    public var name: String?
    /// Shell text run by `/bin/sh -c`; parameters reach it only through the environment and files.
    public var script: String
    /// Seconds this step may run.
    public var timeoutSeconds: Int?
    public init(name: String? = nil, script: String, timeoutSeconds: Int? = nil) {
        self.name = name
        self.script = script
        self.timeoutSeconds = timeoutSeconds
    }
}

/// `POST /api/v1/tasks`.
public struct TaskCreateRequest: Codable, Sendable {
    public var name: String?
    public var zone: String
    public var target: TargetSpec
    public var steps: [StepSpec]
    public var params: [String: String]?
    /// Seconds the whole run may take.
    public var timeoutSeconds: Int?
    public init(
        name: String? = nil, zone: String, target: TargetSpec, steps: [StepSpec], params: [String: String]? = nil,
        timeoutSeconds: Int? = nil
    ) {
        self.name = name
        self.zone = zone
        self.target = target
        self.steps = steps
        self.params = params
        self.timeoutSeconds = timeoutSeconds
    }
}

/// A task with its runs.
public struct TaskView: Codable, Sendable {
    public var id: String
    public var name: String
    public var zone: String
    public var target: TargetSpec
    public var steps: [StepSpec]
    public var params: [String: String]
    public var timeoutSeconds: Int
    public var createdAt: Int64
    public var createdBy: String
    public var canceledAt: Int64?
    public var runs: [RunView]
    public init(
        id: String, name: String, zone: String, target: TargetSpec, steps: [StepSpec], params: [String: String],
        timeoutSeconds: Int, createdAt: Int64, createdBy: String, canceledAt: Int64?, runs: [RunView]
    ) {
        self.id = id
        self.name = name
        self.zone = zone
        self.target = target
        self.steps = steps
        self.params = params
        self.timeoutSeconds = timeoutSeconds
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.canceledAt = canceledAt
        self.runs = runs
    }
}

/// One run: one execution of a task on one agent.
public struct RunView: Codable, Sendable {
    public var id: String
    public var taskId: String
    public var agentId: String
    public var zone: String
    public var status: RunStatus
    public var reason: String?
    public var exitCode: Int?
    public var result: String?
    public var cancelRequested: Bool
    public var createdAt: Int64
    public var dispatchedAt: Int64?
    public var startedAt: Int64?
    public var finishedAt: Int64?
    public init(
        id: String, taskId: String, agentId: String, zone: String, status: RunStatus, reason: String?, exitCode: Int?,
        result: String?, cancelRequested: Bool, createdAt: Int64, dispatchedAt: Int64?, startedAt: Int64?,
        finishedAt: Int64?
    ) {
        self.id = id
        self.taskId = taskId
        self.agentId = agentId
        self.zone = zone
        self.status = status
        self.reason = reason
        self.exitCode = exitCode
        self.result = result
        self.cancelRequested = cancelRequested
        self.createdAt = createdAt
        self.dispatchedAt = dispatchedAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }
}

/// One piece of a run's output.
public struct LogChunkView: Codable, Sendable {
    public var seq: Int64
    /// `stdout`, `stderr` or `system` (messages from the agent itself).
    public var stream: String
    public var data: String
    public var at: Int64
    public init(seq: Int64, stream: String, data: String, at: Int64) {
        self.seq = seq
        self.stream = stream
        self.data = data
        self.at = at
    }
}

/// A page of a list, newest first; pass `nextCursor` as `cursor` for the next page.
public struct Page<Item: Codable & Sendable>: Codable, Sendable {
    public var items: [Item]
    public var nextCursor: String?
    public init(items: [Item], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }
}

/// A run's stored log, from `after` on.
public struct LogPage: Codable, Sendable {
    public var items: [LogChunkView]
    public var status: RunStatus
    public init(items: [LogChunkView], status: RunStatus) {
        self.items = items
        self.status = status
    }
}
