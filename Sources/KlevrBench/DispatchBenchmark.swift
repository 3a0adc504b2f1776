import Crypto
import AsyncHTTPClient
import Foundation
import Hummingbird
import KlevrAPI
import KlevrClient
import KlevrCore
import KlevrManager
import KlevrStore
import Logging
import ServiceLifecycle
import Synchronization

/// `klevr bench dispatch`: a manager on a temporary SQLite database and N simulated agents that speak
/// the real sync protocol over real HTTP on loopback. Measures task created → run received by its
/// agent (the moment a real agent would start it), then one task fanned out to every agent.
public struct DispatchBenchmark: Sendable {
    /// Simulated agents.
    public var agents: Int
    /// Tasks, each for one agent, created one after another.
    public var tasks: Int
    /// Milliseconds between task creations.
    public var gap: Int

    public init(agents: Int = 100, tasks: Int = 100, gap: Int = 10) {
        self.agents = agents
        self.tasks = tasks
        self.gap = gap
    }

    /// Runs the benchmark, printing its progress and, last, its result line.
    public func run() async throws {
        try await BenchManager.run(poolSize: agents * 2 + 64) { manager, base, http in
            try await runBenchmark(manager: manager, base: base, http: http)
        }
    }

    func runBenchmark(manager: Manager, base: String, http: HTTPClient) async throws {
        let client = try await BenchManager.adminClient(manager, base: base, http: http)
        _ = try await client.createZone(body: .json(.init(name: "bench"))).created
        let key = try await client.createEnrollKey(path: .init(zone: "bench"), body: .json(.init())).created.body.json.key

        say("enrolling \(agents) simulated agents…")
        var identities: [Components.Schemas.EnrollResponse] = []
        let anonymous = try BenchManager.client(base: base, http: http)
        for index in 0..<agents {
            identities.append(try await BenchManager.enroll(anonymous, zone: "bench", key: key, signing: .init(), hostname: "sim-\(index)"))
        }
        let received = ReceiptBook()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for identity in identities {
                let agentClient = try BenchManager.client(base: base, http: http, credential: .bearer(identity.credential), timeout: .seconds(90))
                group.addTask { await SimulatedAgent(id: identity.agentId, client: agentClient, book: received).run() }
            }
            // Let every agent hold its long-poll before measuring.
            try await Task.sleep(for: .seconds(1 + Double(agents) / 1000))

            say("creating \(tasks) tasks, \(gap) ms apart…")
            var created: [String: ContinuousClock.Instant] = [:]
            for index in 0..<tasks {
                let target = identities[index % identities.count].agentId
                let start = ContinuousClock.now
                let task = try await client.createTask(
                    body: .json(.init(zone: "bench", target: .agent(target), steps: [.init(script: "true")]))
                ).created.body.json
                for run in task.runs { created[run.id] = start }
                if gap > 0 { try await Task.sleep(for: .milliseconds(gap)) }
            }
            try await received.waitFor(Set(created.keys), within: .seconds(60))
            var latencies: [Double] = []
            for (runID, start) in created {
                if let at = received.receipt(runID) { latencies.append((at - start).milliseconds) }
            }

            say("fanning one task out to all \(agents) agents…")
            let fanStart = ContinuousClock.now
            let fan = try await client.createTask(
                body: .json(.init(zone: "bench", target: .everyAgent, steps: [.init(script: "true")]))
            ).created.body.json
            let fanRuns = Set(fan.runs.map(\.id))
            try await received.waitFor(fanRuns, within: .seconds(120))
            let dispatched = (received.latest(fanRuns) - fanStart).milliseconds
            try await received.waitForResults(fanRuns, within: .seconds(120))
            let stored = (ContinuousClock.now - fanStart).milliseconds
            group.cancelAll()

            latencies.sort()
            let p50 = Self.percentile(latencies, 0.50)
            let p99 = Self.percentile(latencies, 0.99)
            say(String(format: "fan-out to %d agents: all runs received in %.0f ms, all results stored in %.0f ms", agents, dispatched, stored))
            say(String(format: "dispatch latency over %d runs: min %.2f ms, max %.2f ms", latencies.count, latencies.first ?? 0, latencies.last ?? 0))
            say(String(format: "dispatch_latency_ms p50=%.2f p99=%.2f agents=%d tasks=%d", p50, p99, agents, tasks))
        }
    }

    static func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((fraction * Double(sorted.count)).rounded(.up)) - 1
        return sorted[min(max(rank, 0), sorted.count - 1)]
    }
}

extension Duration {
    var milliseconds: Double {
        Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
    }
}

/// When each run reached its simulated agent, and when its result was acknowledged.
final class ReceiptBook: Sendable {
    private let state = Mutex<(receipts: [String: ContinuousClock.Instant], results: Set<String>)>(([:], []))

    func received(_ runID: String) {
        let now = ContinuousClock.now
        state.withLock { if $0.receipts[runID] == nil { $0.receipts[runID] = now } }
    }

    func acknowledged(_ runIDs: [String]) { state.withLock { $0.results.formUnion(runIDs) } }
    func receipt(_ runID: String) -> ContinuousClock.Instant? { state.withLock { $0.receipts[runID] } }

    func latest(_ runIDs: Set<String>) -> ContinuousClock.Instant {
        state.withLock { state in runIDs.compactMap { state.receipts[$0] }.max() ?? .now }
    }

    func waitFor(_ runIDs: Set<String>, within limit: Duration) async throws {
        let deadline = ContinuousClock.now + limit
        while state.withLock({ state in !runIDs.allSatisfy { state.receipts[$0] != nil } }) {
            guard ContinuousClock.now < deadline else { throw BenchError("runs were not delivered within \(limit)") }
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    func waitForResults(_ runIDs: Set<String>, within limit: Duration) async throws {
        let deadline = ContinuousClock.now + limit
        while state.withLock({ !runIDs.isSubset(of: $0.results) }) {
            guard ContinuousClock.now < deadline else { throw BenchError("results were not stored within \(limit)") }
            try await Task.sleep(for: .milliseconds(1))
        }
    }
}

/// An agent that speaks the real protocol but does not execute anything: it reports each run as
/// started and succeeded at once.
struct SimulatedAgent {
    let id: String
    let client: Client
    let book: ReceiptBook

    func run() async {
        var report: Components.Schemas.AgentReport?
        while !Task.isCancelled {
            do {
                let request = Components.Schemas.SyncRequest(wait: report == nil, reports: report.map { [$0] } ?? [])
                let answer = try await client.agentSync(body: .json(request)).ok.body.json
                book.acknowledged(answer.acks.results)
                report = nil
                if !answer.runs.isEmpty {
                    let now = Clock.nowMillis()
                    for envelope in answer.runs { book.received(envelope.runId) }
                    report = Components.Schemas.AgentReport(
                        agentId: id, started: answer.runs.map { .init(runId: $0.runId, at: now) }, logs: [],
                        results: answer.runs.map { .init(runId: $0.runId, outcome: .succeeded, exitCode: 0, finishedAt: now) })
                }
            } catch {
                if Task.isCancelled { return }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }
}

/// The manager's port, once it listens.
final class PortBox: Sendable {
    private let port = Mutex<Int?>(nil)
    func set(_ value: Int) { port.withLock { $0 = value } }
    var value: Int? { port.withLock { $0 } }
}

/// A manager on a temporary SQLite database, served on a free loopback port for a benchmark.
enum BenchManager {
    static func run(
        poolSize: Int, leaseMillis: Int64 = 2_500, _ body: @escaping @Sendable (Manager, String, HTTPClient) async throws -> Void
    ) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("klevr-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let logger = Logger(label: "klevr.bench")
        var config = ManagerConfig(
            host: "127.0.0.1", port: 0, database: .sqlite(path: directory + "/bench.db"), adminPassword: Secrets.randomToken(bytes: 16),
            bcryptCost: 4, leaseMillis: leaseMillis)
        // Every simulated agent holds a connection (a real zone's members go through its primary).
        config.maxConnections = max(config.maxConnections, poolSize + 64)
        let (manager, _) = try await Manager.bootstrap(config: config, logger: logger)
        let portBox = PortBox()
        let app = manager.application(onServerRunning: { port in portBox.set(port) })
        var httpConfig = HTTPClient.Configuration()
        httpConfig.connectionPool = .init(idleTimeout: .seconds(20), concurrentHTTP1ConnectionsPerHostSoftLimit: poolSize)
        httpConfig.timeout = .init(connect: .seconds(10), read: .seconds(120))
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfig)
        var failure: (any Error)?
        do {
            let services = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await services.run() }
                let deadline = ContinuousClock.now + .seconds(30)
                while portBox.value == nil && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
                guard let port = portBox.value else { throw BenchError("the manager did not start") }
                do {
                    try await body(manager, "http://127.0.0.1:\(port)", http)
                } catch {
                    await services.triggerGracefulShutdown()
                    throw error
                }
                await services.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        } catch {
            failure = error
        }
        await manager.store.database.close()
        try? await http.shutdown()
        if let failure { throw failure }
    }

    /// An API client with a fresh admin token.
    static func adminClient(_ manager: Manager, base: String, http: HTTPClient) async throws -> Client {
        guard let admin = try await manager.store.user(named: "admin") else { throw BenchError("no admin") }
        let token = Secrets.generate(.apiToken)
        _ = try await manager.store.createToken(userID: admin.id, name: "bench", tokenHash: Secrets.hash(token), now: Clock.nowMillis(), actor: .system)
        return try client(base: base, http: http, credential: .bearer(token))
    }

    /// A client of the manager at `base` over the benchmark's HTTP client.
    static func client(base: String, http: HTTPClient, credential: ManagerCredential? = nil, timeout: Duration = .seconds(30)) throws -> Client {
        ManagerClient.make(try ManagerClientConfig(server: base, credential: credential, timeout: timeout), http: http)
    }

    /// Enrolls a simulated agent with a signing key (proof of possession) and a fresh seal key.
    static func enroll(
        _ anonymous: Client, zone: String, key: String, signing: Curve25519.Signing.PrivateKey, hostname: String
    ) async throws -> Components.Schemas.EnrollResponse {
        let request = try EnrollRequest.proving(
            zone: zone, enrollKey: key, key: signing, sealKey: Curve25519.KeyAgreement.PrivateKey().publicKey,
            facts: HostFacts(hostname: hostname, os: "simulated", version: "bench", addresses: []), time: Clock.nowMillis())
        return try await anonymous.enrollAgent(body: .json(request)).created.body.json
    }
}
