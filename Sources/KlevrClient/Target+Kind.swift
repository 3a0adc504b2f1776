import KlevrAPI
import OpenAPIRuntime

/// The document's `Target` is a `oneOf` (an agent with its id, or `any`/`all` without one), which the
/// generator makes an enum of two anonymous cases; these name them.
extension Components.Schemas.Target {
    /// The one agent with this id.
    public static func agent(_ id: String) -> Self { .case1(.init(kind: "agent", agentId: id)) }
    /// One online agent of the zone, chosen by the manager.
    public static var anyOnlineAgent: Self { .case2(.init(kind: "any")) }
    /// Every agent of the zone that is not retired.
    public static var everyAgent: Self { .case2(.init(kind: "all")) }

    /// `agent`, `any` or `all`, as on the wire.
    public var kindName: String {
        switch self {
        case .case1(let target): (target.kind.value as? String) ?? "agent"
        case .case2(let target): (target.kind?.value as? String) ?? "-"
        }
    }

    /// The agent's id for a target of one agent.
    public var agentID: String? {
        if case .case1(let target) = self { return target.agentId }
        return nil
    }
}
