import AsyncHTTPClient
import Foundation
import KlevrAPI
import KlevrAgent
import KlevrClient
import KlevrCore
import KlevrTestSupport
import OpenAPIRuntime
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A `klevr` process of a system test, with its output in a file.
final class KlevrProcess: @unchecked Sendable {
    // Only touched from the test's own task; Process is a class without Sendable conformance.
    let process = Process()
    let logPath: String

    init(_ arguments: [String], environment: [String: String] = [:], logPath: String) throws {
        self.logPath = logPath
        process.executableURL = URL(fileURLWithPath: Cluster.binary)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// SIGKILLs the process and waits until it is gone (on a thread of its own, see ``onOwnThread(_:)``).
    func kill9() async {
        kill(pid, SIGKILL)
        await onOwnThread { self.process.waitForExit() }
    }

    /// SIGTERMs the process and waits until it is gone, SIGKILLing it after 10 s (on a thread of its own).
    func stop() async {
        signalStop()
        await onOwnThread { self.waitForStop(deadline: Date().addingTimeInterval(10)) }
    }

    /// ``stop()`` for a `defer`, which cannot await: SIGTERM now, the waiting (and a SIGKILL after 10 s)
    /// on a thread of its own, the caller not blocked; the test waits for it at its end (``WaitsForProcesses``).
    func stopInBackground() {
        signalStop()
        let deadline = Date().addingTimeInterval(10)
        ProcessReaper.inBackground { self.waitForStop(deadline: deadline) }
    }

    /// SIGTERM, if it still runs.
    func signalStop() {
        if process.isRunning { process.terminate() }
    }

    /// Blocks until the process ended, SIGKILLing it at `deadline`: never on the cooperative pool.
    func waitForStop(deadline: Date) {
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitForExit()
    }
}

/// A manager and agents as real processes on loopback, in a temporary directory. `shutdown()` ends
/// everything, and the tests call it on every path.
final class Cluster: @unchecked Sendable {
    static var binary: String {
        if let explicit = ProcessInfo.processInfo.environment["KLEVR_BIN"], !explicit.isEmpty { return explicit }
        // Tests/KlevrSystemTests/Cluster.swift → package root → .build/debug/klevr
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/klevr").path
    }

    static let password = "system-test-admin-password"

    let directory: String
    let port: Int
    var manager: KlevrProcess?
    var agents: [String: KlevrProcess] = [:]
    var token = ""
    var enrollKey = ""
    /// `https` for a manager given `--tls-cert` and `--tls-key` in ``managerArguments``.
    var scheme = "http"
    /// Extra arguments of `klevr manager`.
    var managerArguments: [String] = []
    /// How the test's own clients verify an `https` manager (set before the first request).
    var clientTrust: ServerTrust?
    /// The HTTP client under the test's generated clients, made on first use for ``clientTrust``;
    /// ``shutdown()`` shuts it down.
    private let httpClient = Mutex<HTTPClient?>(nil)

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("klevr-system-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        port = try LoopbackPort.free()
    }

    var url: String { "\(scheme)://127.0.0.1:\(port)" }
    var cliEnvironment: [String: String] { ["KLEVR_CONFIG": directory + "/cli.json"] }

    /// How the test's clients reach the manager: with ``clientTrust``, as `credential`.
    func config(credential: ManagerCredential?, timeout: Duration = .seconds(30)) throws -> ManagerClientConfig {
        try ManagerClientConfig(server: url, credential: credential, trust: clientTrust, timeout: timeout)
    }

    /// The HTTP client the test's generated clients share (made for ``clientTrust`` on first use).
    func http() throws -> HTTPClient {
        let made = try config(credential: nil)
        return httpClient.withLock { client in
            if let client { return client }
            let new = ManagerClient.makeHTTPClient(for: made)
            client = new
            return new
        }
    }

    /// The generated client of the manager's API, authenticated with the admin's token (saved by
    /// ``bootstrap(zone:loginArguments:)``); every answer outside 2xx throws a ``ManagerRefusal``.
    var api: Client {
        get throws { try client(credential: token.isEmpty ? nil : .bearer(token)) }
    }

    /// A generated client with another credential (nil: the public routes only) or deadline.
    func client(credential: ManagerCredential?, timeout: Duration = .seconds(30)) throws -> Client {
        ManagerClient.make(try config(credential: credential, timeout: timeout), http: try http())
    }

    /// Starts (or restarts) the manager on the same data dir and port, and waits until it answers.
    func startManager() async throws {
        manager = try KlevrProcess(
            ["manager", "--data-dir", directory + "/manager", "--listen", "127.0.0.1:\(port)", "--admin-password", Self.password, "--heartbeat", "2", "--log-level", "debug"]
                + managerArguments,
            logPath: directory + "/manager.log")
        let probe = try client(credential: nil, timeout: .seconds(2))
        // Generous: a debug build starting next to a dozen other suites' processes on two cores.
        try await eventually(90, "the manager answers /readyz") {
            (try? await probe.ready().ok) != nil
        }
    }

    /// Logs in with the CLI, creates the zone and an enrollment key.
    func bootstrap(zone: String, loginArguments: [String] = []) async throws {
        let login = try await runCLI(["login", "--server", url, "--username", "admin", "--password", Self.password] + loginArguments)
        #expect(login.status == 0, "login: \(login.output)")
        struct SavedLogin: Decodable { var token: String }
        token = try JSONDecoder().decode(SavedLogin.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/cli.json"))).token
        let attributes = try FileManager.default.attributesOfItem(atPath: directory + "/cli.json")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        _ = try await api.createZone(body: .json(.init(name: zone))).created.body.json
        enrollKey = try await api.createEnrollKey(path: .init(zone: zone), body: .json(.init())).created.body.json.key
    }

    /// Each agent's peer port, kept across restarts.
    var peerPorts: [String: Int] = [:]

    /// Starts (or restarts) an agent with its own state dir and peer port; returns its id once it is
    /// enrolled. With `viaPeers` it gets no manager URL, only those members' addresses.
    @discardableResult
    func startAgent(
        _ name: String, zone: String, viaPeers: [String]? = nil, managerURL: String? = nil, extraArguments: [String] = [],
        environment extraEnvironment: [String: String] = [:]
    ) async throws -> String {
        let state = directory + "/agents/" + name
        let port = try peerPorts[name] ?? LoopbackPort.free()
        peerPorts[name] = port
        var arguments = ["agent", "run", "--zone", zone, "--state-dir", state, "--listen", "127.0.0.1:\(port)", "--log-level", "debug"]
        if let viaPeers {
            for peer in viaPeers { arguments += ["--peer", "127.0.0.1:\(peerPorts[peer] ?? 0)"] }
        } else {
            arguments += ["--manager", managerURL ?? url]
        }
        arguments += extraArguments
        agents[name] = try KlevrProcess(
            arguments, environment: ["KLEVR_ENROLL_KEY": enrollKey].merging(extraEnvironment) { _, new in new }, logPath: directory + "/agent-\(name).log")
        var id = ""
        try await eventually(90, "agent \(name) enrolled") {
            guard let data = FileManager.default.contents(atPath: state + "/identity.json"),
                let identity = try? JSONDecoder().decode(AgentIdentity.self, from: data)
            else { return false }
            id = identity.agentId
            return true
        }
        return id
    }

    /// Runs the CLI to completion and returns its exit status and output.
    func runCLI(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        let log = directory + "/cli-\(UUID().uuidString).log"
        let process = try KlevrProcess(arguments, environment: cliEnvironment, logPath: log)
        let deadline = ContinuousClock.now + .seconds(TestTime.scaled(120))
        while process.process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        if process.process.isRunning { await process.kill9() }
        return (process.process.terminationStatus, process.log)
    }

    func run(_ id: String) async throws -> Components.Schemas.Run {
        try await api.getRun(path: .init(id: id)).ok.body.json
    }

    /// A run's stored output (the JSON page of its logs, not a stream).
    func output(_ id: String) async throws -> String {
        try await api.runLogs(path: .init(id: id), headers: .init(accept: [.init(contentType: .json)])).ok.body.json.items.map(\.data).joined()
    }

    func createTask(_ request: Components.Schemas.TaskCreateRequest) async throws -> Components.Schemas.Task {
        try await api.createTask(body: .json(request)).created.body.json
    }

    func zone(_ name: String) async throws -> Components.Schemas.Zone {
        try await api.getZone(path: .init(zone: name)).ok.body.json
    }

    /// The agents (one page of up to 500), optionally of one zone.
    func agents(zone: String? = nil) async throws -> [Components.Schemas.Agent] {
        try await api.listAgents(query: .init(zone: zone, limit: 500)).ok.body.json.items
    }

    func agent(_ id: String) async throws -> Components.Schemas.Agent {
        try await api.getAgent(path: .init(id: id)).ok.body.json
    }

    /// The newest events (a JSON page, not a stream) matching the filters.
    func events(kind: String? = nil, subject: String? = nil, limit: Int? = nil) async throws -> [Components.Schemas.Event] {
        try await api.listEvents(query: .init(kind: kind, subject: subject, limit: limit), headers: .init(accept: [.init(contentType: .json)]))
            .ok.body.json.items
    }

    /// The newest events of a zone (a JSON page).
    func zoneEvents(_ zone: String, limit: Int? = nil) async throws -> [Components.Schemas.Event] {
        try await api.zoneEvents(path: .init(zone: zone), query: .init(limit: limit), headers: .init(accept: [.init(contentType: .json)]))
            .ok.body.json.items
    }

    /// Ends every process and the HTTP client without blocking the caller: the tests call this from
    /// `defer`, which cannot await, on one of the cooperative pool's few threads (two on the CI machine),
    /// where waiting for a dozen processes to exit would stall every other task of the test process.
    /// Every agent gets SIGTERM at once, the manager once they are gone (as before, agents stop with their
    /// manager still there); a thread of its own does the waiting (SIGKILL after 10 s) and then shuts the
    /// HTTP client down, and the test waits for that at its end (the system suites have the
    /// ``WaitsForProcesses`` trait): no process outlives its test.
    func shutdown() {
        let members = Array(agents.values)
        let manager = self.manager
        for agent in members { agent.signalStop() }
        let deadline = Date().addingTimeInterval(10)
        let http = httpClient.withLock { client in
            defer { client = nil }
            return client
        }
        ProcessReaper.inBackground {
            for agent in members { agent.waitForStop(deadline: deadline) }
            manager?.signalStop()
            manager?.waitForStop(deadline: Date().addingTimeInterval(10))
            try? http?.syncShutdown()
        }
    }
}

extension Components.Schemas.Zone {
    /// The zone's lease epoch, absent read as 0 (the document's "never elected").
    var leaseEpoch: Int64 { epoch ?? 0 }
}
