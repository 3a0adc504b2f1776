import Foundation
import KlevrAPI
import KlevrClient
import KlevrCore
import KlevrTestSupport
import Testing

/// A fan-out over ten real agent processes, targeted by the labels they were started with: `maxConcurrency`
/// bounds the runs executing at once, `maxErrors` stops the rollout.
@Suite(.serialized, .timeLimit(.minutes(10)), .waitsForProcesses)
struct RolloutSystemTests {
    /// The largest number of intervals open at one instant; an interval that ends when another starts does
    /// not overlap it.
    static func maximumOverlap(_ intervals: [(start: Int64, end: Int64)]) -> Int {
        var edges: [(at: Int64, step: Int)] = []
        for interval in intervals {
            edges.append((interval.start, 1))
            edges.append((interval.end, -1))
        }
        // At one instant an end comes before a start.
        edges.sort { first, second in first.at != second.at ? first.at < second.at : first.step < second.step }
        var open = 0
        var most = 0
        for (_, step) in edges {
            open += step
            most = max(most, open)
        }
        return most
    }

    @Test func aFanOutToTenAgentsRunsTwoAtATimeAndStopsAfterTheSecondFailure() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "z")
        var agents: [String] = []
        for index in 0..<10 {
            agents.append(try await cluster.startAgent("a\(index)", zone: "z", extraArguments: ["--labels", "role=web,slot=s\(index)"]))
        }
        // One agent that the selector leaves out.
        let other = try await cluster.startAgent("db", zone: "z", extraArguments: ["--labels", "role=db"])
        #expect(try await cluster.agent(agents[0]).labels.additionalProperties == ["role": "web", "slot": "s0"])

        // Each run records when its script started and ended (this machine's clock, shared by all agents).
        let shared = FileManager.default.temporaryDirectory.appendingPathComponent("klevr-rollout-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: shared) }
        let script = #"f=$(mktemp "$KLEVR_PARAM_DIR/run.XXXXXX"); date +%s%N > "$f"; sleep 1; date +%s%N >> "$f""#
        let task = try await cluster.createTask(
            .init(
                zone: "z", target: .matching("role=web", allZones: false), steps: [.init(script: script)],
                params: .init(additionalProperties: ["DIR": shared]), rollout: .init(maxConcurrency: "2")))
        #expect(Set(task.runs.map(\.agentId)) == Set(agents))
        #expect(!task.runs.contains { $0.agentId == other })
        try await eventually(240, "the ten runs ended") {
            let runs = try await cluster.api.getTask(path: .init(id: task.id)).ok.body.json.runs
            return runs.count == 10 && runs.allSatisfy { $0.status == .succeeded || $0.status == .failed || $0.status == .canceled }
        }
        let runs = try await cluster.api.getTask(path: .init(id: task.id)).ok.body.json.runs
        #expect(runs.allSatisfy { $0.status == .succeeded }, "\(runs.map(\.status))")
        var intervals: [(start: Int64, end: Int64)] = []
        for file in try FileManager.default.contentsOfDirectory(atPath: shared) {
            let lines = try String(contentsOfFile: shared + "/" + file, encoding: .utf8).split(separator: "\n").compactMap { Int64($0) }
            if lines.count == 2 { intervals.append((lines[0], lines[1])) }
        }
        #expect(intervals.count == 10)
        let overlap = Self.maximumOverlap(intervals)
        #expect(overlap <= 2, "at most two scripts at once, saw \(overlap)")

        // Every script fails; one at a time, so that the second failure is the last run that started: it
        // stops the rollout, and the eight runs not started end canceled with the reason.
        let failing = try await cluster.createTask(
            .init(
                zone: "z", target: .matching("role=web", allZones: false), steps: [.init(script: "exit 3")],
                rollout: .init(maxConcurrency: "1", maxErrors: "1")))
        try await eventually(240, "the failing rollout stopped") {
            let runs = try await cluster.api.getTask(path: .init(id: failing.id)).ok.body.json.runs
            return runs.allSatisfy { $0.status == .failed || $0.status == .canceled }
        }
        let ended = try await cluster.api.getTask(path: .init(id: failing.id)).ok.body.json
        #expect(ended.runs.filter { $0.status == .failed }.count == 2)
        let canceled = ended.runs.filter { $0.status == .canceled }
        #expect(canceled.count == 8)
        #expect(canceled.allSatisfy { $0.reason == "rollout stopped: 2 runs failed, more than maxErrors 1" && $0.startedAt == nil })
        #expect(try await cluster.events(kind: "task.rollout_stopped", subject: failing.id).count == 1)

        // `klevr task show` shows the rollout and the selector.
        let shown = try await cluster.runCLI(["task", "show", failing.id])
        #expect(shown.output.contains("rollout: at most 1 at once") && shown.output.contains("selector role=web"), "\(shown.output)")
    }
}
