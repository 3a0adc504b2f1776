import AsyncHTTPClient
import Crypto
import Foundation
import KlevrAPI
import KlevrClient
import KlevrCore
import KlevrManager
import KlevrStore

/// `klevr bench cron`: a manager on a temporary SQLite database with N recurring tasks that all fire every
/// minute (`* * * * *`), each for one enrolled (simulated, silent) agent. Measures each occurrence's
/// lateness: the time its run was created (the scheduler pass's clock) minus the occurrence's instant,
/// over `minutes` minutes; and for each minute, when all of its runs were stored (looked at every 20 ms).
public struct CronBenchmark: Sendable {
    /// Recurring tasks.
    public var tasks: Int
    /// Minute boundaries to measure.
    public var minutes: Int

    public init(tasks: Int = 1_000, minutes: Int = 2) {
        self.tasks = tasks
        self.minutes = minutes
    }

    /// Runs the benchmark, printing its progress and, last, its result line.
    public func run() async throws {
        try await BenchManager.run(poolSize: 64) { manager, base, http in
            try await runBenchmark(manager: manager, base: base, http: http)
        }
    }

    func runBenchmark(manager: Manager, base: String, http: HTTPClient) async throws {
        let client = try await BenchManager.adminClient(manager, base: base, http: http)
        _ = try await client.createZone(body: .json(.init(name: "bench"))).created
        let key = try await client.createEnrollKey(path: .init(zone: "bench"), body: .json(.init())).created.body.json.key
        let agent = try await BenchManager.enroll(try BenchManager.client(base: base, http: http), zone: "bench", key: key, signing: .init(), hostname: "sim")

        say("creating \(tasks) tasks firing every minute…")
        for index in 0..<tasks {
            _ = try await client.createTask(
                body: .json(
                    .init(
                        name: "cron-\(index)", zone: "bench", target: .agent(agent.agentId), steps: [.init(script: "true")],
                        schedule: .init(cron: "* * * * *", overlap: .queue)))
            ).created
        }
        // The first occurrence measured is the first minute boundary after every task exists.
        let created = Clock.nowMillis()
        let first = (created / 60_000 + 1) * 60_000
        let last = first + Int64(minutes - 1) * 60_000
        say("measuring the occurrences from \(first) to \(last) (epoch ms)…")
        // After each boundary, how long until all of its runs are stored (committed and visible), looked
        // at every 20 ms: this includes the scheduler's work, not only its wake-up.
        var stored: [Double] = []
        for boundary in stride(from: first, through: last, by: 60_000) {
            while Clock.nowMillis() < boundary { try await Task.sleep(for: .milliseconds(min(1_000, max(1, boundary - Clock.nowMillis())))) }
            let giveUp = boundary + 60_000
            while Clock.nowMillis() < giveUp {
                if try await manager.store.runCount(occurrence: boundary) >= tasks {
                    stored.append(Double(Clock.nowMillis() - boundary))
                    break
                }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        let runs = try await manager.store.runs(RunFilter(zoneName: "bench"), after: nil, limit: 1_000_000)
            .filter { ($0.occurrence ?? 0) >= first && ($0.occurrence ?? 0) <= last }
        let lateness = runs.compactMap { run in run.occurrence.map { Double(run.createdAt - $0) } }.sorted()
        guard !lateness.isEmpty else { throw BenchError("no occurrence fired") }
        let p50 = DispatchBenchmark.percentile(lateness, 0.5)
        let p99 = DispatchBenchmark.percentile(lateness, 0.99)
        let storedText = stored.count == minutes ? stored.map { String(format: "%.0f", $0) }.joined(separator: ",") : "not-all"
        say(
            String(
                format: "cron tasks=%d minutes=%d occurrences=%d expected=%d lateness_ms p50=%.0f p99=%.0f max=%.0f",
                tasks, minutes, lateness.count, tasks * minutes, p50, p99, lateness.last ?? 0) + " all_stored_ms=" + storedText)
    }
}
