import KlevrAPI
@testable import KlevrAgent
import Testing

/// Candidates are ranked by priority, then id; the current primary and agents without a manager route
/// are not candidates.
@Suite struct CandidateRankingTests {
    static let list = Membership(
        zoneId: "z",
        primary: "p",
        epoch: 4,
        members: [
            Member(agentId: "p", publicKey: "", peerAddress: "h:1", canReachManager: true, priority: 100),
            Member(agentId: "b", publicKey: "", peerAddress: "h:2", canReachManager: true, priority: 5),
            Member(agentId: "a", publicKey: "", peerAddress: "h:3", canReachManager: true, priority: 5),
            Member(agentId: "c", publicKey: "", peerAddress: "h:4", canReachManager: true, priority: 10),
            Member(agentId: "x", publicKey: "", peerAddress: "h:5", canReachManager: false, priority: 50),
        ],
        issuedAt: 0)

    @Test(arguments: [("c", 0), ("a", 300), ("b", 600), ("unknown", 900)])
    func delays(agent: String, delay: Int) {
        #expect(ZoneState.campaignDelay(of: agent, in: Self.list) == Int64(delay))
    }
}
