import KlevrAPI
import KlevrCore
import KlevrStore

/// A task as the service creates it: what the API's `TaskCreateRequest` asks for, in the service's
/// terms (the API part checks the request's shapes; ``TaskService`` checks its rules).
struct TaskSpec: Sendable, Equatable {
    var name: String?
    var zone: String
    var target: TaskTarget
    var steps: [StepSpec]
    var params: [String: String]?
    var timeoutSeconds: Int?
    /// When the runs become due (epoch ms); nil or past for at once.
    var runAt: Int64? = nil
    /// How long after becoming due a run may start; nil for no deadline.
    var deliverWithinSeconds: Int? = nil
    /// A recurring task's schedule; nil for a one-off task.
    var recurrence: RecurrenceSpec? = nil
    /// The fan-out's limits as written (`"2"`, `"10%"`); nil for none.
    var maxConcurrency: String? = nil
    var maxErrors: String? = nil
    /// The credentials its runs receive, by name.
    var credentials: [String] = []
    /// The steps run when a step fails.
    var recover: [StepSpec] = []
    /// Where the task's run events are delivered, with its sealed secret; nil for none.
    var callback: TaskCallback? = nil
}

/// A recurring task's schedule as asked for.
struct RecurrenceSpec: Sendable, Equatable {
    var cron: String
    var timeZone: String = "UTC"
    var until: Int64?
    var maxOccurrences: Int?
    var overlap: OverlapPolicy = .skip
    /// `none`, `latest` or `all`.
    var catchUp: String = "none"
    var catchUpLimit: Int = 10
}

/// Where a task runs. Stored with the task as this JSON (`{"kind": …, "agentId": …}`).
struct TaskTarget: Codable, Sendable, Equatable {
    /// How agents are chosen.
    enum Kind: String, Codable, Sendable {
        /// One named agent (`agentId`).
        case agent
        /// One online agent of the zone, chosen by the manager.
        case any
        /// Every agent of the zone that is not retired.
        case all
        /// Every active agent whose labels match `selector`: of the task's zone, or of every zone with
        /// `allZones`.
        case selector
    }

    var kind: Kind
    var agentId: String?
    /// The label selector of `kind: selector`, as written.
    var selector: String? = nil
    /// With `kind: selector`: agents of every zone, not only the task's.
    var allZones: Bool? = nil
}
