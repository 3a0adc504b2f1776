import AsyncHTTPClient
import Crypto
import Foundation
import KlevrAPI
import KlevrClient
import KlevrCore
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import Hummingbird
import HummingbirdCore
import KlevrServerGuard
import ServiceLifecycle

/// The agent daemon: enrolls once, then long-polls the manager for runs, executes them and reports
/// starts, output and results through its outbox.
///
/// Two loops talk to the manager: the **poll** loop holds a long-poll open to receive runs and cancels
/// at once; the **push** loop sends what the outbox holds as soon as it holds something, and a
/// heartbeat at least every heartbeat interval.
public struct AgentService: Service {
    /// At most this many connections on the peer port at once: a primary holds one poll of each member
    /// (zones of a few thousand members fit), and an outsider cannot take every file descriptor.
    public static let peerConnectionLimit = 4096

    let config: AgentConfig
    let logger: Logger
    /// The process's changeable log level and recent lines (`agent.set-log-level`, `agent.collect-logs`).
    let log: AgentLog?

    public init(config: AgentConfig, logger: Logger, log: AgentLog? = nil) {
        self.config = config
        self.logger = logger
        self.log = log
    }

    /// The agent's HTTP client: a refused connection fails at once instead of being retried until the
    /// request's deadline, so that a dead primary is noticed (and left) quickly.
    /// With `tls`, an `https://` manager is verified that way (peers are plain HTTP and unaffected).
    static func makeHTTPClient(tls: TLSConfiguration? = nil) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        // Dropped after 20 s idle, before the manager's or a peer's server closes them at 30 s (a request
        // sent on a connection the server is closing at that moment would fail).
        configuration.connectionPool.idleTimeout = .seconds(20)
        configuration.timeout.connect = .seconds(3)
        configuration.tlsConfiguration = tls
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Enrollment failed for a reason that retrying cannot fix.
    public struct EnrollmentRefused: Error, CustomStringConvertible {
        public var description: String
    }

    public func run() async throws {
        guard let tls = try await managerTLS() else { return }
        let http = Self.makeHTTPClient(tls: tls.configuration)
        do {
            try await run(http: http)
        } catch {
            try? await http.shutdown()
            throw error
        }
        try? await http.shutdown()
    }

    func run(http: HTTPClient) async throws {
        try DurableFile.makeDirectory(config.stateDir)
        guard let (identity, clock) = try await identity(http: http) else { return }
        let keys = try identity.keys()
        guard let zoneID = identity.zoneId else { throw AgentIdentity.Outdated() }
        var agentLogger = self.logger
        agentLogger[metadataKey: "agent.id"] = "\(identity.agentId)"
        let logger = agentLogger
        let outbox = try Outbox(directory: config.stateDir + "/outbox")
        for runID in try await outbox.interruptedRuns() {
            // The agent stopped while this run executed; its processes are gone with it. Report that
            // instead of running it again.
            let killed = Executor.killLeftovers(of: runID)
            logger.warning(
                "reporting a run interrupted by an agent restart", metadata: ["run.id": "\(runID)", "leftover.processes.killed": "\(killed)"])
            try await outbox.finish(
                RunResult(
                    runId: runID, outcome: .failed, exitCode: nil,
                    reason: "the agent stopped (crash or kill) while the run was executing or waiting for a slot; it was not run again",
                    result: nil, finishedAt: Clock.nowMillis()))
        }
        var executor = try Executor(
            workDir: config.workDir, runAs: config.runAs, maskedSecrets: identity.secrets + (config.enrollKey.map { [$0] } ?? []),
            sealKey: identity.sealPrivateKey.flatMap { Data(base64Encoded: $0) }.flatMap { try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: $0) },
            outbox: outbox,
            killGraceSeconds: config.killGraceSeconds, logger: logger, clock: clock)
        let slots = RunSlots(limit: config.maxRuns)
        let registry = RunRegistry()
        let lifecycle = AgentLifecycle()
        executor.commands = BuiltinCommandRunner(
            agentID: identity.agentId, zone: identity.zone, zoneID: zoneID, maxRuns: config.maxRuns, hasManagerRoute: config.managerURL != nil,
            stateDir: config.stateDir, registry: registry, lifecycle: lifecycle, log: log, startedAt: clock.now(), now: { clock.now() }, logger: logger)
        let runner = executor
        let intake = try RunIntake(identity: identity, outbox: outbox, clock: clock)
        let (incoming, incomingContinuation) = AsyncStream<RunEnvelope>.makeStream()
        let canceler = RunCanceler(outbox: outbox, registry: registry, logger: logger, clock: clock)
        let zone = ZoneState(
            selfID: identity.agentId, zoneID: zoneID, managerKey: keys.manager,
            config: ElectionStateMachine.Config(
                canReachManager: config.managerURL != nil, failoverTimeout: config.failoverTimeout, renewInterval: 700),
            seeds: config.peers, selfAddress: config.peerAddress, stateDir: config.stateDir, now: Clock.nowMillis())
        let link = ZoneLink(
            identity: identity, keys: keys, zone: zone, clock: clock,
            manager: try config.managerURL.map { try ManagerLink(server: $0, credential: identity.credential, http: http) }, http: http,
            queues: MemberQueues(), logger: logger,
            ownRuns: { envelopes in for envelope in envelopes { incomingContinuation.yield(envelope) } },
            ownCancels: { runIDs in for runID in runIDs { await canceler.cancel(runID) } })
        let session = AgentSession(
            identity: identity, link: link, outbox: outbox, registry: registry, logger: logger, facts: HostFactsCollector.collect(labels: config.labels),
            heartbeat: .seconds(max(1, identity.heartbeatSeconds)))
        let peerServer = PeerServer(
            link: link, managerURL: config.managerURL, heartbeatSeconds: identity.heartbeatSeconds,
            batcher: ReportBatcher(send: { blobs in await link.relay(blobs) }))
        // The peer port faces the zone's network: a client that is slow to send a request, or holds a
        // connection without using it, is disconnected (members' polls held by the primary are answered,
        // not waited on), and past `peerConnectionLimit` connections new ones wait in the listen backlog, so
        // that nobody on the LAN can take the file descriptors the agent needs to reach the manager.
        let peerApp = Application(
            router: peerServer.router(),
            server: .http1(configuration: HTTP1Channel.Configuration(additionalChannelHandlers: [SlowClientGuard(limits: .init())])),
            configuration: .init(
                address: .hostname(config.listenHost, port: config.listenPort), serverName: "klevr-agent",
                availableConnectionsDelegate: ConnectionCap(limit: AgentService.peerConnectionLimit)),
            logger: logger)
        let election = ElectionLoop(link: link, peerAddress: config.peerAddress, priority: config.priority, logger: logger)

        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await peerApp.run() }
            group.addTask { await election.run() }
            group.addTask {
                await session.pollLoop()
                incomingContinuation.finish()
            }
            group.addTask {
                await session.pushLoop()
            }
            for await envelope in incoming {
                // Stopping (agent.shutdown, agent.restart): a new run is not taken, so not recorded either;
                // the manager hands it out again when the agent is back.
                if await lifecycle.draining {
                    logger.info("not taking a run: the agent is stopping", metadata: ["run.id": "\(envelope.runId)"])
                    continue
                }
                guard let envelope = try await intake.admit(envelope, logger: logger) else { continue }
                let control = await registry.add(envelope.runId, taskID: envelope.taskId, at: clock.now())
                group.addTask {
                    let result = await slots.withSlot(unlessStopped: control) { () async -> RunResult in
                        // A run that waited for a slot past its delivery deadline does not start late.
                        let now = clock.now()
                        if let deliverBy = envelope.deliverBy, now > deliverBy {
                            logger.warning("a run's delivery deadline passed while it waited for a slot", metadata: ["run.id": "\(envelope.runId)"])
                            return RunResult(
                                runId: envelope.runId, outcome: .expired, exitCode: nil,
                                reason: "its delivery deadline (\(deliverBy), epoch ms) passed while it waited for a slot (--max-runs)", result: nil,
                                finishedAt: now)
                        }
                        // Reported as started only now that it has a slot (--max-runs): until then it is queued here.
                        if await control.stopReason == nil {
                            await registry.markStarted(envelope.runId, at: clock.now())
                            try? await outbox.reportStart(envelope.runId, at: clock.now())
                            logger.info("run started", metadata: ["run.id": "\(envelope.runId)"])
                        }
                        return await runner.execute(envelope, control: control)
                    }
                    try await outbox.finish(result)
                    await registry.remove(envelope.runId)
                    logger.info("run finished", metadata: ["run.id": "\(envelope.runId)", "outcome": "\(result.outcome.rawValue)"])
                    // A built-in command asked the agent to stop: its result is in the outbox; stop taking runs.
                    if await lifecycle.exit != nil { incomingContinuation.finish() }
                }
            }
            if let exit = await lifecycle.exit {
                // Stopped by a built-in command: what still runs is stopped and reported, and the outbox is
                // given a bounded time to be acknowledged (what is not stays on disk and is sent after a
                // restart; the ledger keeps the command from running again).
                await registry.stopAll(.shutdown)
                await registry.waitUntilEmpty()
                let deadline = ContinuousClock.now + .seconds(30)
                while await !outbox.isEmpty && ContinuousClock.now < deadline {
                    try? await Task.sleep(for: .milliseconds(100))
                }
                let delivered = await outbox.isEmpty
                // The push loop flushes once more and returns; the other loops end when the throw cancels them.
                await session.finishAfterRuns()
                logger.notice(
                    "stopping the agent", metadata: ["reason": "\(exit.reason)", "exit.status": "\(exit.status)", "outbox.delivered": "\(delivered)"])
                throw exit
            }
            // Graceful shutdown: stop what still runs; its results are reported by the push loop's
            // last flush.
            await registry.stopAll(.shutdown)
            await session.finishAfterRuns()
        }
    }

    /// The TLS configuration for the manager: nil for a plain `http://` manager or none.
    struct ManagerTLS {
        var configuration: TLSConfiguration?
    }

    /// How the agent verifies an `https://` manager: `--ca` or `--ca-pin` (then saved in the state dir),
    /// else the choice saved by an earlier start, else the system trust store. A pinned certificate is
    /// fetched and checked at every start, retried while the manager is unreachable; a certificate with
    /// another key stops the agent with ``ServerTrust/PinMismatch``.
    /// - Returns: nil when shut down while waiting for the manager.
    func managerTLS() async throws -> ManagerTLS? {
        try DurableFile.makeDirectory(config.stateDir)
        let chosen = try config.managerTrust ?? ServerTrust.load(stateDir: config.stateDir) ?? .system
        guard let url = config.managerURL, url.lowercased().hasPrefix("https://") else { return ManagerTLS(configuration: nil) }
        var delay = Duration.seconds(1)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let trust = try await chosen.fetchingPinnedCertificate(server: url)
                let configuration = try trust.tlsConfiguration()
                if config.managerTrust != nil { try chosen.save(stateDir: config.stateDir) }
                logger.info("verifying the manager's TLS certificate", metadata: ["manager": "\(url)", "trust": "\(trust.summary)"])
                return ManagerTLS(configuration: configuration)
            } catch let unreachable as ServerTrust.Unreachable {
                logger.warning("cannot check the manager's TLS certificate yet; retrying", metadata: ["error": "\(unreachable)"])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(10))
            }
        }
        return nil
    }

    /// The stored identity, or a new one from enrollment, with the agent's estimate of the manager's
    /// clock. Retries while the manager is unreachable; returns nil when shut down before enrolling.
    ///
    /// Enrollment (docs/security.md): the agent asks the manager (or a member) for the manager's keys,
    /// checks them against the pin carried by the enrollment key, signs its enrollment statement with its
    /// private key (proof of possession) and seals the request to the manager's key; the answer comes
    /// back sealed to the agent's key and signed by the manager. A relay or a fake peer learns nothing.
    func identity(http: HTTPClient) async throws -> (AgentIdentity, ManagerClock)? {
        if let stored = try AgentIdentity.load(stateDir: config.stateDir) {
            if stored.zone != config.zone {
                throw EnrollmentRefused(
                    description: "the state dir belongs to zone '\(stored.zone)', not '\(config.zone)'; use another --state-dir")
            }
            var identity = stored
            identity.managerURL = config.managerURL ?? ""
            return (identity, ManagerClock())
        }
        guard let enrollKey = config.enrollKey, !enrollKey.isEmpty else {
            throw EnrollmentRefused(description: "this agent is not enrolled yet: give --enroll-key")
        }
        let pin = KlevrAPI.Keys.pin(inEnrollKey: enrollKey)
        if config.managerURL == nil && pin == nil {
            throw EnrollmentRefused(
                description: "enrolling through a peer needs an enrollment key that carries the manager's pin (kle_….<pin>, as the manager prints it)")
        }
        let key = try AgentIdentity.keyPair(stateDir: config.stateDir)
        let sealKey = try AgentIdentity.sealKeyPair(stateDir: config.stateDir)
        // With a manager URL the agent enrolls there; otherwise through a member of the zone.
        let targets: [EnrollTarget] =
            try config.managerURL.map { [.manager(try ManagerLink(server: $0, credential: nil, http: http))] }
            ?? config.peers.map { .peer(address: $0, http: http) }
        guard !targets.isEmpty else { throw EnrollmentRefused(description: "give --manager URL or --peer HOST:PORT") }
        var delay = Duration.seconds(1)
        var attempt = 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let target = targets[attempt % targets.count]
            attempt += 1
            do {
                let hello = try await target.hello()
                guard let managerKey = KlevrAPI.Keys.signing(hello.managerPublicKey),
                    let signature = Data(base64Encoded: hello.sealKeySignature),
                    managerKey.isValidSignature(signature, for: ManagerHello.sealKeyStatement(hello.managerSealKey)),
                    let managerSealKey = KlevrAPI.Keys.agreement(hello.managerSealKey)
                else { throw EnrollmentRefused(description: "\(target) answered with keys the manager did not sign") }
                if let pin {
                    guard KlevrAPI.Keys.pin(of: managerKey) == pin else {
                        throw EnrollmentRefused(
                            description: "\(target) presented a manager key that does not match the enrollment key's pin; not enrolling there")
                    }
                } else {
                    logger.warning("the enrollment key carries no manager pin: trusting the manager's key on first use")
                }
                let clock = ManagerClock(managerTime: hello.managerTime)
                let request = try EnrollRequest.proving(
                    zone: config.zone, enrollKey: enrollKey, key: key, sealKey: sealKey.publicKey, facts: HostFactsCollector.collect(labels: config.labels),
                    peerAddress: config.peerAddress, time: clock.now())
                let sealed = SealedEnrollment(
                    box: try Sealing.seal(try JSONEncoder().encode(request), to: managerSealKey, context: SealedEnrollment.requestContext))
                let box = try await target.enroll(sealed)
                guard let opened = try? Sealing.open(box, with: sealKey, context: SealedEnrollment.answerContext),
                    let blob = try? JSONDecoder().decode(SignedBlob.self, from: opened),
                    let answer = try? blob.open(EnrollResponse.self, domain: SignedBlob.Domain.enrollAnswer, key: managerKey),
                    answer.managerPublicKey == hello.managerPublicKey
                else { throw EnrollmentRefused(description: "the enrollment answer was not sealed to this agent and signed by the manager") }
                clock.observe(answer.managerTime)
                let identity = AgentIdentity(
                    agentId: answer.agentId, credential: answer.credential, zone: answer.zone, managerURL: config.managerURL ?? "",
                    privateKey: key.rawRepresentation.base64EncodedString(), heartbeatSeconds: answer.heartbeatSeconds,
                    managerPublicKey: answer.managerPublicKey, sealPrivateKey: sealKey.rawRepresentation.base64EncodedString(),
                    zoneId: answer.zoneId, managerSealKey: answer.managerSealKey, sealKeySignature: answer.sealKeySignature)
                try identity.save(stateDir: config.stateDir)
                logger.info("enrolled", metadata: ["agent.id": "\(answer.agentId)", "zone": "\(answer.zone)"])
                return (identity, clock)
            } catch let refused as EnrollmentRefused where targets.count == 1 {
                throw refused
            } catch where targets.count == 1 && EnrollTarget.isRefusal(error) {
                throw EnrollmentRefused(description: "enrollment refused: \(ManagerClient.cause(of: error))")
            } catch {
                logger.warning("could not enroll through \(target); retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(10))
            }
        }
        return nil
    }
}

/// Where an agent that is not enrolled yet enrolls: the manager, or a member of its zone that relays
/// the sealed enrollment (the peer API serves the same hello and a relay of `enroll-sealed`).
enum EnrollTarget: CustomStringConvertible {
    case manager(ManagerLink)
    case peer(address: String, http: HTTPClient)

    var description: String {
        switch self {
        case .manager(let link): link.config.server
        case .peer(let address, _): "the zone member at \(address)"
        }
    }

    func hello() async throws -> ManagerHello {
        switch self {
        case .manager(let link): try await link.hello(timeout: .seconds(10))
        case .peer(let address, let http): try await PeerClient.hello(address: address, http: http, timeout: .seconds(10))
        }
    }

    func enroll(_ sealed: SealedEnrollment) async throws -> SealedBox {
        switch self {
        case .manager(let link): try await link.enroll(sealed, timeout: .seconds(30))
        case .peer(let address, let http): try await PeerClient.enroll(sealed, address: address, http: http, timeout: .seconds(30))
        }
    }

    /// Whether `error` is an answer that refuses the enrollment for good (4xx but 409), not a failure to
    /// reach the target that a retry may cure.
    static func isRefusal(_ error: any Error) -> Bool {
        let status: Int
        if let refusal = ManagerLink.refusal(in: error) {
            status = refusal.status
        } else if case .status(let code, _) = error as? PeerClient.Failure {
            status = code
        } else {
            return false
        }
        return (400..<500).contains(status) && status != 409
    }
}

/// The runs executing on this agent (or waiting for a slot), by id, with their controls.
actor RunRegistry {
    /// One run the agent holds.
    struct Entry: Sendable {
        var control: RunControl
        var taskID: String
        /// When it was admitted, then when it started (epoch ms).
        var since: Int64
        var started: Bool
    }

    private var entries: [String: Entry] = [:]
    private var emptyWaiters: [CheckedContinuation<Void, Never>] = []

    func add(_ runID: String, taskID: String = "", at: Int64 = 0) -> RunControl {
        let control = RunControl()
        entries[runID] = Entry(control: control, taskID: taskID, since: at, started: false)
        return control
    }

    func markStarted(_ runID: String, at: Int64) {
        entries[runID]?.started = true
        entries[runID]?.since = at
    }

    func remove(_ runID: String) {
        entries[runID] = nil
        if entries.isEmpty {
            for waiter in emptyWaiters { waiter.resume() }
            emptyWaiters.removeAll()
        }
    }

    func control(_ runID: String) -> RunControl? { entries[runID]?.control }

    /// The runs held now, by id.
    var all: [String: Entry] { entries }

    func stopAll(_ reason: StopReason, except: String? = nil) async {
        for (runID, entry) in entries where runID != except { await entry.control.stop(reason) }
    }

    func waitUntilEmpty() async {
        if entries.isEmpty { return }
        await withCheckedContinuation { emptyWaiters.append($0) }
    }

    /// Whether the run is held.
    func holds(_ runID: String) -> Bool { entries[runID] != nil }
}

extension AgentService: CustomStringConvertible {
    /// Service names are logged by the service group: never let the enrollment key in.
    public var description: String { "AgentService(\(config))" }
}
