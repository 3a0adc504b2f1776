import AsyncHTTPClient
import Crypto
import Foundation
import KlevrAPI
import KlevrAgent
import KlevrClient
import KlevrCore
import KlevrManager
import KlevrPeerAPI
import KlevrStore
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import OpenAPIAsyncHTTPClient
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `klevr bench relay`: a manager (in this process, temporary SQLite), one real primary agent process,
/// and N simulated members without a manager route that speak the real signed peer protocol to it
/// (stamped requests, reports signed by the member, long polls held at the primary).
///
/// Measures run dispatch through the relay (task created → envelope received by the member), the
/// fan-out of one task to every agent (all received; all results stored, as acknowledged to the
/// members), and, idle, the manager's database accesses per second and the primary's CPU.
public struct RelayBenchmark: Sendable {
    /// Simulated members.
    public var members: Int
    /// Tasks for one member each, created one after another.
    public var tasks: Int
    /// Milliseconds between those tasks.
    public var gap: Int
    /// Seconds of idle measurement.
    public var idleSeconds: Int

    public init(members: Int = 100, tasks: Int = 100, gap: Int = 20, idleSeconds: Int = 10) {
        self.members = members
        self.tasks = tasks
        self.gap = gap
        self.idleSeconds = idleSeconds
    }

    /// Runs the benchmark, printing its progress and, last, its result line.
    public func run() async throws {
        Self.raiseFileLimit()
        try await BenchManager.run(poolSize: 64) { manager, base, http in
            try await runBenchmark(manager: manager, base: base, http: http)
        }
    }

    /// One open file per held connection: raise the soft limit to the hard one.
    static func raiseFileLimit() {
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
    }

    func runBenchmark(manager: Manager, base: String, http: HTTPClient) async throws {
        let client = try await BenchManager.adminClient(manager, base: base, http: http)
        _ = try await client.createZone(body: .json(.init(name: "relay"))).created
        let key = try await client.createEnrollKey(path: .init(zone: "relay"), body: .json(.init())).created.body.json.key
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("klevr-relay-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }

        say("starting the primary agent process…")
        let primaryPort = try LoopbackPort.free()
        let primary = Process()
        primary.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        primary.arguments = [
            "agent", "run", "--manager", base, "--zone", "relay", "--state-dir", root + "/primary", "--work-dir", root + "/primary-work",
            "--listen", "127.0.0.1:\(primaryPort)", "--priority", "1000", "--log-level", "error",
        ]
        primary.environment = ProcessInfo.processInfo.environment.merging(["KLEVR_ENROLL_KEY": key]) { _, new in new }
        try primary.run()
        defer {
            if primary.isRunning { primary.terminate() }
            let deadline = Date().addingTimeInterval(15)
            while primary.isRunning && Date() < deadline { usleep(20_000) }
            if primary.isRunning { kill(primary.processIdentifier, SIGKILL) }
        }
        try await FailoverBenchmark.waitFor(seconds: 60) {
            try await client.getZone(path: .init(zone: "relay")).ok.body.json.primary != nil
        }
        guard let primaryIdentity = try AgentIdentity.load(stateDir: root + "/primary"),
            let primaryKey = Keys.signing(try primaryIdentity.keys().signing.publicKey.rawRepresentation.base64EncodedString())
        else { throw BenchError("the primary did not enroll") }

        say("enrolling \(members) simulated members…")
        let anonymous = try BenchManager.client(base: base, http: http)
        var simulated: [SimulatedMember] = []
        for start in stride(from: 0, to: members, by: 32) {
            try await withThrowingTaskGroup(of: SimulatedMember.self) { group in
                for index in start..<min(start + 32, members) {
                    group.addTask {
                        let signing = Curve25519.Signing.PrivateKey()
                        let answer = try await BenchManager.enroll(anonymous, zone: "relay", key: key, signing: signing, hostname: "member-\(index)")
                        return SimulatedMember(id: answer.agentId, zoneID: answer.zoneId, key: signing)
                    }
                }
                for try await member in group { simulated.append(member) }
            }
        }

        var memberHTTPConfig = HTTPClient.Configuration()
        memberHTTPConfig.connectionPool = .init(idleTimeout: .seconds(20), concurrentHTTP1ConnectionsPerHostSoftLimit: members * 2 + 16)
        memberHTTPConfig.timeout = .init(connect: .seconds(10), read: .seconds(60))
        let memberHTTP = HTTPClient(eventLoopGroupProvider: .singleton, configuration: memberHTTPConfig)
        let book = ReceiptBook()
        let address = "127.0.0.1:\(primaryPort)"
        try await withThrowingTaskGroup(of: Void.self) { group in
            for member in simulated {
                group.addTask { await member.run(address: address, http: memberHTTP, primaryKey: primaryKey, book: book) }
            }
            // Every member holds its long poll at the primary before measuring.
            say("waiting for every member to be heard by the primary…")
            let warm = Set(
                try await (0..<min(members, 20)).asyncMap { index -> String in
                    let task = try await client.createTask(
                        body: .json(.init(zone: "relay", target: .agent(simulated[index].id), steps: [.init(script: "true")]))
                    ).created.body.json
                    guard let run = task.runs.first else { throw BenchError("the task has no run") }
                    return run.id
                })
            try await book.waitForResults(warm, within: .seconds(120))
            try await Task.sleep(for: .seconds(2))

            say("dispatching \(tasks) tasks to one member each, \(gap) ms apart…")
            var latencies: [Double] = []
            var created: [String: ContinuousClock.Instant] = [:]
            for index in 0..<tasks {
                let target = simulated[index % simulated.count].id
                let start = ContinuousClock.now
                let task = try await client.createTask(
                    body: .json(.init(zone: "relay", target: .agent(target), steps: [.init(script: "true")]))
                ).created.body.json
                guard let run = task.runs.first else { throw BenchError("the task has no run") }
                created[run.id] = start
                try await Task.sleep(for: .milliseconds(gap))
            }
            try await book.waitFor(Set(created.keys), within: .seconds(60))
            for (runID, start) in created {
                if let received = book.receipt(runID) { latencies.append((received - start).milliseconds) }
            }
            latencies.sort()
            try await book.waitForResults(Set(created.keys), within: .seconds(60))

            say("fan-out of one task to every agent…")
            let fanStart = ContinuousClock.now
            let fan = try await client.createTask(
                body: .json(.init(zone: "relay", target: .everyAgent, steps: [.init(script: "true")]))
            ).created.body.json
            let memberRuns = Set(fan.runs.filter { $0.agentId != primaryIdentity.agentId }.map(\.id))
            let primaryRun = fan.runs.first { $0.agentId == primaryIdentity.agentId }?.id
            try await book.waitFor(memberRuns, within: .seconds(120))
            let fanout = (book.latest(memberRuns) - fanStart).milliseconds
            try await book.waitForResults(memberRuns, within: .seconds(120))
            if let primaryRun {
                try await FailoverBenchmark.waitFor(seconds: 60) {
                    let status = try await client.getRun(path: .init(id: primaryRun)).ok.body.json.status
                    return RunStatus(rawValue: status.rawValue)?.isTerminal ?? false
                }
            }
            let results = (ContinuousClock.now - fanStart).milliseconds

            say("idle for \(idleSeconds) s…")
            try await Task.sleep(for: .seconds(3))
            let epochBefore = try await client.getZone(path: .init(zone: "relay")).ok.body.json.epoch ?? 0
            let accessesBefore = manager.store.database.accessCount
            let cpuBefore = Self.cpuSeconds(of: primary.processIdentifier)
            let idleStart = ContinuousClock.now
            try await Task.sleep(for: .seconds(idleSeconds))
            let idleSpan = (ContinuousClock.now - idleStart).milliseconds / 1000
            let accesses = Double(manager.store.database.accessCount - accessesBefore) / idleSpan
            let cpu = (Self.cpuSeconds(of: primary.processIdentifier) - cpuBefore) / idleSpan * 100
            let epochAfter = try await client.getZone(path: .init(zone: "relay")).ok.body.json.epoch ?? 0
            group.cancelAll()

            let p50 = DispatchBenchmark.percentile(latencies, 0.5)
            let p99 = DispatchBenchmark.percentile(latencies, 0.99)
            say(String(format: "dispatch through the relay over %d runs: min %.2f ms, max %.2f ms", latencies.count, latencies.first ?? 0, latencies.last ?? 0))
            say(String(format: "fan-out to %d agents: members received all in %.0f ms, every result stored in %.0f ms", fan.runs.count, fanout, results))
            say("lease epoch during the idle span: \(epochBefore) → \(epochAfter)")
            say(
                String(
                    format: "relay members=%d dispatch_p50_ms=%.2f dispatch_p99_ms=%.2f fanout_ms=%.0f results_ms=%.0f idle_manager_tx_per_s=%.2f idle_primary_cpu_pct=%.2f",
                    members, p50, p99, fanout, results, accesses, cpu))
        }
        try? await memberHTTP.shutdown()
    }

    /// User plus system CPU seconds of a process.
    static func cpuSeconds(of pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command: state is field 3, utime 14 and stime 15 (1-based over the whole line).
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

/// A zone member without a manager route, simulated: it holds a signed long poll at the primary, and
/// reports each run it receives as started and succeeded at once, signed with its own key.
struct SimulatedMember: Sendable {
    let id: String
    let zoneID: String
    let key: Curve25519.Signing.PrivateKey

    func run(address: String, http: HTTPClient, primaryKey: Curve25519.Signing.PublicKey, book: ReceiptBook) async {
        var pending: AgentReport?
        var digest: String?
        guard let url = URL(string: "http://\(address)") else { return }
        let stamping = PeerStamping(
            agentID: id, zoneID: zoneID, key: key, time: { Clock.nowMillis() }, maxBody: 8 << 20, maxAnswer: 64 << 20,
            keyOf: { _, _ in primaryKey }, verified: { _ in })
        let client = KlevrPeerAPI.Client(
            serverURL: url, transport: AsyncHTTPClientTransport(configuration: .init(client: http, timeout: .seconds(40))), middlewares: [stamping])
        while !Task.isCancelled {
            do {
                var request = SyncRequest(wait: pending == nil, reports: [], membershipDigest: digest, holdMillis: 27_000)
                if let pending {
                    request.relayed = [try SignedBlob.sign(pending, domain: SignedBlob.Domain.report, signer: id, key: key)]
                }
                // The generated peer client, stamping the request and checking the primary's signature.
                guard case .ok(let ok) = try await client.peerSync(body: .json(request)) else {
                    try await Task.sleep(for: .milliseconds(200))
                    continue
                }
                let answer = try ok.body.json
                if let membership = answer.signedMembership { digest = membership.digest }
                if pending != nil {
                    if answer.signedAcks != nil { pending = nil }
                    if let acks = answer.signedAcks.flatMap({ try? JSONDecoder().decode(MemberAcks.self, from: Data(base64Encoded: $0.payload) ?? Data()) }) {
                        book.acknowledged(acks.acks.results)
                    }
                }
                if !answer.runs.isEmpty {
                    let now = Clock.nowMillis()
                    for envelope in answer.runs { book.received(envelope.runId) }
                    var report = pending ?? AgentReport(agentId: id)
                    report.started += answer.runs.map { RunStarted(runId: $0.runId, at: now) }
                    report.results += answer.runs.map {
                        RunResult(runId: $0.runId, outcome: .succeeded, exitCode: 0, reason: nil, result: nil, finishedAt: now)
                    }
                    pending = report
                }
            } catch {
                if Task.isCancelled { return }
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var values: [T] = []
        for element in self { values.append(try await transform(element)) }
        return values
    }
}
