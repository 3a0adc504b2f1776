import Foundation
import KlevrAPI
import KlevrAgent
import KlevrCore
import Testing

/// The outbox and ledger survive restarts and never let a run start twice.
@Suite struct OutboxTests {
    static func directory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("klevr-outbox-\(UUID().uuidString)").path
    }

    @Test func aRunIsAcceptedOnceEvenAcrossRestarts() async throws {
        let path = Self.directory()
        let runID = Secrets.newID()
        let first = try Outbox(directory: path)
        #expect(try await first.begin(runID, at: 1))
        #expect(try await !first.begin(runID, at: 2))
        let reopened = try Outbox(directory: path)
        #expect(try await !reopened.begin(runID, at: 3))
        #expect(try await !reopened.begin("../escape", at: 3))
    }

    @Test func pendingItemsSurviveARestartInOrderUntilAcknowledged() async throws {
        let path = Self.directory()
        let runID = Secrets.newID()
        do {
            let outbox = try Outbox(directory: path)
            _ = try await outbox.begin(runID, at: 1)
            try await outbox.appendLog(runID: runID, stream: .stdout, data: "a", at: 2)
            try await outbox.appendLog(runID: runID, stream: .stdout, data: "b", at: 3)
        }
        let outbox = try Outbox(directory: path)
        let report = await outbox.report(agentID: "agent")
        #expect(report.started.map(\.runId) == [runID])
        #expect(report.logs.map(\.seq) == [1, 2])
        #expect(report.logs.map(\.data) == ["a", "b"])
        // Numbering continues after a restart.
        try await outbox.appendLog(runID: runID, stream: .stdout, data: "c", at: 4)
        #expect(await outbox.report(agentID: "agent").logs.map(\.seq) == [1, 2, 3])
        #expect(try await outbox.interruptedRuns() == [runID])

        await outbox.apply(SyncAcks(started: [runID], logs: [runID: 2], results: [], rejected: [:]))
        #expect(await outbox.report(agentID: "agent").logs.map(\.data) == ["c"])
        try await outbox.finish(RunResult(runId: runID, outcome: .succeeded, exitCode: 0, reason: nil, result: nil, finishedAt: 5))
        #expect(try await outbox.interruptedRuns().isEmpty)
        await outbox.apply(SyncAcks(started: [], logs: [runID: 3], results: [runID], rejected: [:]))
        #expect(await outbox.isEmpty)
        let afterRestart = try Outbox(directory: path)
        #expect(await afterRestart.isEmpty)
        #expect(try await afterRestart.interruptedRuns().isEmpty)
        #expect(try await !afterRestart.begin(runID, at: 6))
    }

    @Test func rejectedReportsAreDropped() async throws {
        let outbox = try Outbox(directory: Self.directory())
        let runID = Secrets.newID()
        _ = try await outbox.begin(runID, at: 1)
        try await outbox.appendLog(runID: runID, stream: .stdout, data: "x", at: 2)
        await outbox.apply(SyncAcks(started: [], logs: [:], results: [], rejected: [runID: "no run for this agent"]))
        #expect(await outbox.isEmpty)
    }
}
