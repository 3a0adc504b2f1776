import Foundation
import KlevrAPI
import KlevrAgent
import KlevrClient
import KlevrCore
import KlevrTestSupport
import NIOHTTP1
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The hardened front door with real processes: log lines cannot be forged, state files are private in
/// an open directory, a paused manager blames no agent, the CLI takes the short ids it prints.
@Suite(.serialized, .timeLimit(.minutes(5)), .waitsForProcesses)
struct FrontDoorSystemTests {
    @Test func requestValuesCannotForgeLogLinesAndStateFilesArePrivate() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        // A data dir that existed before, open to everyone.
        try FileManager.default.createDirectory(atPath: cluster.directory + "/manager", withIntermediateDirectories: true)
        chmod(cluster.directory + "/manager", 0o777)
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "local")

        let forged = "x\nFORGED-\(UInt32.random(in: 1...UInt32.max)) notice klevr.manager : admin logged in"
        let request = EnrollRequest(
            zone: forged, enrollKey: "kle_wrong", publicKey: "AAAA", facts: HostFacts(hostname: "h", os: "linux", version: "t", addresses: []),
            sealKey: "AAAA", proof: "AAAA", proofTime: 0)
        let refused = try await RawHTTP.sendJSON(.POST, cluster.url + "/api/v1/agent/enroll", request)
        #expect(!refused.isSuccess, "a forged enrollment was accepted: HTTP \(refused.status)")
        try await eventually(30, "the refused enrollment is logged") { cluster.manager?.log.contains("refused an enrollment") == true }
        let lines = (cluster.manager?.log ?? "").split(separator: "\n")
        #expect(!lines.contains { $0.hasPrefix("FORGED-") }, "a request value started a log line")
        #expect(lines.contains { $0.contains("refused an enrollment") && $0.contains("x\\nFORGED-") })

        for file in ["klevr.db", "klevr.db-wal", "klevr.db-shm", "manager-signing.key"] {
            #expect(PrivateFile.mode(cluster.directory + "/manager/" + file) == 0o600, "\(file)")
        }
    }

    @Test func aPausedManagerMarksNoAgentOfflineWhenItResumes() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "local")
        for name in ["a", "b"] { try await cluster.startAgent(name, zone: "local") }
        try await eventually(30, "both agents online") {
            let agents = try await cluster.agents()
            return agents.count == 2 && agents.allSatisfy { $0.status == .online }
        }
        let pid = try #require(cluster.manager).process.processIdentifier
        // Heartbeats are 2 s here: 12 s stopped is twice the 6 s after which an agent counts as offline,
        // and the primary's lease runs out meanwhile.
        kill(pid, SIGSTOP)
        try await Task.sleep(for: .seconds(12))
        let resumed = Clock.nowMillis()
        kill(pid, SIGCONT)
        // Through the grace after the resume (6 heartbeats) and one heartbeat beyond it, nobody is
        // offline: the agents are heard again within the grace, or the last reads would say offline.
        let watchUntil = ContinuousClock.now + .seconds(14)
        var offline: [String] = []
        var heardAgain: Set<String> = []
        while ContinuousClock.now < watchUntil {
            if let agents = try? await cluster.agents() {
                offline += agents.filter { $0.status != .online }.map { "\($0.id): \($0.status.rawValue) \($0.statusReason ?? "")" }
                heardAgain.formUnion(agents.filter { ($0.lastSeenAt ?? 0) > resumed }.map(\.id))
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(offline.isEmpty, "\(offline)")
        #expect(heardAgain.count == 2, "heard again after the resume: \(heardAgain)")
        let events = try await cluster.zoneEvents("local", limit: 100)
        #expect(!events.contains { $0.kind == .agent_offline }, "\(events.map(\.kind.rawValue))")
        #expect(cluster.manager?.log.contains("the manager was stalled") == true)
    }

    @Test func theCLIAcceptsTheShortIdsItPrints() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "local")
        let agent = try await cluster.startAgent("a", zone: "local")
        let task = try await cluster.createTask(.init(zone: "local", target: .everyAgent, steps: [.init(script: "echo short-ids")]))
        let run = try #require(task.runs.first)
        try await eventually(30, "the run ends") { try await cluster.run(run.id).status == .succeeded }

        let shown = try await cluster.runCLI(["run", "show", String(run.id.prefix(8))])
        #expect(shown.status == 0, "\(shown.output)")
        #expect(shown.output.contains(run.id))
        let taskShown = try await cluster.runCLI(["task", "show", String(task.id.prefix(6))])
        #expect(taskShown.status == 0, "\(taskShown.output)")
        #expect(taskShown.output.contains(task.id))
        let listed = try await cluster.runCLI(["run", "list", "--agent", String(agent.prefix(8))])
        #expect(listed.status == 0, "\(listed.output)")
        #expect(listed.output.contains(run.id))
        let unknown = try await cluster.runCLI(["run", "show", "fffffff"])
        #expect(unknown.status != 0)
        #expect(unknown.output.contains("no run id starts with 'fffffff'"), "\(unknown.output)")
        let invalid = try await cluster.runCLI(["run", "show", "../x"])
        #expect(invalid.status != 0)
        #expect(invalid.output.contains("is not a run id"), "\(invalid.output)")
    }
}
