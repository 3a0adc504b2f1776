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
    /// The active agents whose labels match a selector: of the task's zone, or of every zone.
    public static func matching(_ selector: String, allZones: Bool) -> Self {
        .case3(.init(kind: "selector", selector: selector, allZones: allZones ? true : nil))
    }

    /// `agent`, `any` or `all`, as on the wire.
    public var kindName: String {
        switch self {
        case .case1(let target): (target.kind.value as? String) ?? "agent"
        case .case2(let target): (target.kind?.value as? String) ?? "-"
        case .case3(let target): (target.kind.value as? String) ?? "selector"
        }
    }

    /// The selector of a selector target, with ` (all zones)` when it spans zones.
    public var selectorText: String? {
        switch self {
        case .case3(let target): target.selector + (target.allZones == true ? " (all zones)" : "")
        case .case2(let target): (target.selector?.value as? String).map { $0 + ((target.allZones?.value as? Bool) == true ? " (all zones)" : "") }
        case .case1: nil
        }
    }

    /// The agent's id for a target of one agent.
    public var agentID: String? {
        if case .case1(let target) = self { return target.agentId }
        return nil
    }
}
