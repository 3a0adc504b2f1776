import AsyncHTTPClient
import Foundation
import KlevrAPI
import KlevrAgent
import KlevrClient
import KlevrCore
import KlevrManager
import KlevrStore

#if canImport(Glibc)
import Glibc
#endif

/// `klevr bench failover`: a manager and a zone of real agent processes; the current primary is
/// SIGKILLed again and again, and each time the bench measures kill → a new primary holds the lease,
/// and kill → a run created at the kill for a surviving agent has started (the new primary dispatches).
public struct FailoverBenchmark: Sendable {
    /// Trials (each kills the current primary once).
    public var trials: Int
    /// Agents in the zone (3 to 5).
    public var agents: Int

    public init(trials: Int = 10, agents: Int = 3) {
        self.trials = trials
        self.agents = agents
    }

    /// Runs the benchmark, printing its progress and, last, its result line.
    public func run() async throws {
        let agentCount = agents
        let trialCount = trials
        try await BenchManager.run(poolSize: 64) { manager, base, http in
            try await Self.measure(manager: manager, base: base, http: http, agents: agentCount, trials: trialCount)
        }
    }

    static func measure(manager: Manager, base: String, http: HTTPClient, agents: Int, trials: Int) async throws {
        let client = try await BenchManager.adminClient(manager, base: base, http: http)
        let zone = try await client.createZone(body: .json(.init(name: "bench"))).created.body.json
        let key = try await client.createEnrollKey(path: .init(zone: "bench"), body: .json(.init())).created.body.json.key
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("klevr-failover-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fleet = try AgentFleet(count: agents, managerURL: base, zone: "bench", enrollKey: key, root: root)
        defer { fleet.stopAll() }
        fleet.startAll()

        let store = manager.store
        func currentPrimary() async throws -> (String, Int64)? {
            guard let lease = try await store.lease(zoneID: zone.id), lease.expiresAt > Clock.nowMillis() else { return nil }
            return (lease.holder, lease.epoch)
        }
        say("starting \(agents) agents and waiting for the first primary…")
        try await waitFor(seconds: 60) { try await currentPrimary() != nil && fleet.enrolledCount() == agents }

        var leaseTimes: [Double] = []
        var dispatchTimes: [Double] = []
        for trial in 1...trials {
            guard let (primary, epoch) = try await currentPrimary(), let victim = fleet.index(of: primary),
                let survivor = fleet.ids().first(where: { $0 != primary })
            else { throw BenchError("no primary before trial \(trial)") }
            let killed = ContinuousClock.now
            fleet.kill(victim)
            let task = try await client.createTask(
                body: .json(.init(zone: "bench", target: .agent(survivor), steps: [.init(script: "true")]))
            ).created.body.json
            guard let runID = task.runs.first?.id else { throw BenchError("no run") }
            var leaseAt: ContinuousClock.Instant?
            var dispatchAt: ContinuousClock.Instant?
            let deadline = ContinuousClock.now + .seconds(60)
            while (leaseAt == nil || dispatchAt == nil) && ContinuousClock.now < deadline {
                if leaseAt == nil, let (holder, newEpoch) = try await currentPrimary(), holder != primary, newEpoch > epoch {
                    leaseAt = .now
                }
                if dispatchAt == nil, let run = try await store.run(id: runID), run.startedAt != nil {
                    dispatchAt = .now
                }
                try await Task.sleep(for: .milliseconds(10))
            }
            guard let leaseAt, let dispatchAt else {
                throw BenchError("trial \(trial): no failover within 60 s (lease taken over: \(leaseAt != nil), run started: \(dispatchAt != nil))")
            }
            leaseTimes.append((leaseAt - killed).milliseconds)
            dispatchTimes.append((dispatchAt - killed).milliseconds)
            say(String(format: "trial %d: new lease after %.0f ms, dispatching after %.0f ms", trial, leaseTimes.last ?? 0, dispatchTimes.last ?? 0))
            // The killed agent comes back as a secondary before the next trial.
            fleet.start(victim)
            try await waitFor(seconds: 60) {
                guard let agent = try await store.agent(id: primary) else { return false }
                let lead = try await currentPrimary()
                return Clock.nowMillis() - agent.lastSeenAt < 1_000 && lead != nil
            }
        }
        let sortedDispatch = dispatchTimes.sorted()
        let sortedLease = leaseTimes.sorted()
        say(String(format: "lease taken over: p50 %.0f ms, max %.0f ms", DispatchBenchmark.percentile(sortedLease, 0.5), sortedLease.last ?? 0))
        say(String(format: "failover_ms p50=%.0f max=%.0f trials=%d", DispatchBenchmark.percentile(sortedDispatch, 0.5), sortedDispatch.last ?? 0, trials))
    }

    static func waitFor(seconds: Double, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw BenchError("timed out after \(seconds) s")
    }
}

/// Agent processes of this binary, with fixed state dirs and peer ports so that they can be restarted.
final class AgentFleet: @unchecked Sendable {
    // Only used from the benchmark's task.
    private var processes: [Process?]
    private let arguments: [[String]]
    private let stateDirs: [String]
    private let enrollKey: String

    init(count: Int, managerURL: String, zone: String, enrollKey: String, root: String) throws {
        self.enrollKey = enrollKey
        var arguments: [[String]] = []
        var dirs: [String] = []
        for index in 0..<count {
            let port = try LoopbackPort.free()
            let dir = "\(root)/agent-\(index)"
            dirs.append(dir)
            arguments.append([
                "agent", "run", "--manager", managerURL, "--zone", zone, "--state-dir", dir, "--listen", "127.0.0.1:\(port)", "--log-level", "error",
            ])
        }
        self.arguments = arguments
        self.stateDirs = dirs
        self.processes = Array(repeating: nil, count: count)
    }

    func startAll() { for index in processes.indices { start(index) } }

    func start(_ index: Int) {
        let process = Process()
        process.executableURL = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = arguments[index]
        var environment = ProcessInfo.processInfo.environment
        environment["KLEVR_ENROLL_KEY"] = enrollKey
        process.environment = environment
        try? process.run()
        processes[index] = process
    }

    func kill(_ index: Int) {
        guard let process = processes[index] else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        processes[index] = nil
    }

    func stopAll() {
        for process in processes.compactMap({ $0 }) where process.isRunning { process.terminate() }
        for process in processes.compactMap({ $0 }) { process.waitUntilExit() }
    }

    func ids() -> [String] {
        stateDirs.compactMap { (try? AgentIdentity.load(stateDir: $0))??.agentId }
    }

    func enrolledCount() -> Int { ids().count }

    func index(of agentID: String) -> Int? {
        stateDirs.firstIndex { (try? AgentIdentity.load(stateDir: $0))??.agentId == agentID }
    }

}
