import AsyncHTTPClient
import Crypto
import Foundation
import KlevrAPI
import KlevrAgent
import KlevrClient
import KlevrCore
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import KlevrTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The zone channel attacked as a member, a fake peer and an outsider would, against real agent
/// processes (docs/security.md).
@Suite(.serialized, .timeLimit(.minutes(6)), .waitsForProcesses)
struct ZoneSecuritySystemTests {
    /// A manager and agents a (preferred primary), b (manager URL), c (only `--peer`, given `seeds`).
    static func zone(cSeeds: [String]? = nil, cExtra: [String] = []) async throws -> (Cluster, [String: String]) {
        let cluster = try Cluster()
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "z")
        var ids: [String: String] = [:]
        ids["a"] = try await cluster.startAgent("a", zone: "z", extraArguments: ["--priority", "100"])
        try await eventually(60, "a is elected") { try await Self.primary(cluster) == ids["a"] }
        ids["b"] = try await cluster.startAgent("b", zone: "z")
        ids["c"] = try await cluster.startAgent("c", zone: "z", viaPeers: cSeeds ?? ["a", "b"], extraArguments: cExtra)
        return (cluster, ids)
    }

    static func primary(_ cluster: Cluster) async throws -> String? {
        try await cluster.zone("z").primary
    }

    static func identity(_ cluster: Cluster, _ name: String) throws -> AgentIdentity {
        try #require(try AgentIdentity.load(stateDir: cluster.directory + "/agents/" + name))
    }

    /// Runs a one-step task on an agent and waits for its end.
    static func runOn(_ cluster: Cluster, _ agentID: String, _ script: String, params: [String: String] = [:]) async throws
        -> Components.Schemas.Run
    {
        let task = try await cluster.createTask(
            .init(zone: "z", target: .agent(agentID), steps: [.init(script: script)], params: .init(additionalProperties: params)))
        let runID = try #require(task.runs.first?.id)
        try await eventually(60, "the run on \(agentID) ended") { try await cluster.run(runID).status.isTerminal }
        return try await cluster.run(runID)
    }

    /// A peer request signed with `identity`'s key, sent as is; returns the status.
    static func peerPost(port: Int, path: String, body: Data, stampedBy identity: AgentIdentity, stamp: PeerStamp? = nil) async throws -> (
        status: Int, stamp: PeerStamp
    ) {
        let keys = try identity.keys()
        let stamp = try stamp ?? PeerStamp.sign(
            method: "POST", path: path, body: body, sender: identity.agentId, zone: try #require(identity.zoneId), time: Clock.nowMillis(),
            key: keys.signing)
        let answer = try await ZoneElectionSystemTests.post(port: port, path: path, body: body, headers: [(PeerStamp.header, stamp.headerValue)])
        return (answer.status, stamp)
    }

    @Test func membersSpeakOnlyForThemselvesRepliesAreRefusedAndRetiredMembersAreCutOff() async throws {
        let (cluster, ids) = try await Self.zone()
        defer { cluster.shutdown() }
        let portA = try #require(cluster.peerPorts["a"])
        let b = try Self.identity(cluster, "b")
        let c = try Self.identity(cluster, "c")
        // Everyone works, c through the primary.
        #expect(try await Self.runOn(cluster, try #require(ids["c"]), "echo ok").status == .succeeded)
        try await eventually(60, "b is in the primary's membership") {
            try await Self.peerPost(port: portA, path: "/peer/v1/sync", body: try JSONEncoder().encode(SyncRequest(wait: false, reports: [])), stampedBy: b)
                .status == 200
        }

        // b cannot report for c: neither a report naming c signed by b, nor one that claims c signed it.
        let forgedReport = AgentReport(
            agentId: c.agentId, started: [], logs: [], results: [RunResult(runId: Secrets.newID(), outcome: .succeeded, exitCode: 0, reason: nil, result: nil, finishedAt: 1)])
        let bKeys = try b.keys()
        for blob in [
            try SignedBlob.sign(forgedReport, domain: SignedBlob.Domain.report, signer: b.agentId, key: bKeys.signing),
            try SignedBlob.sign(forgedReport, domain: SignedBlob.Domain.report, signer: c.agentId, key: bKeys.signing),
        ] {
            let body = try JSONEncoder().encode(SyncRequest(wait: false, reports: [], relayed: [blob]))
            #expect(try await Self.peerPost(port: portA, path: "/peer/v1/sync", body: body, stampedBy: b).status == 403)
        }

        // b cannot obtain c's runs: with c stopped, a run for c waits at the primary, and b's polls never carry it.
        let cProcess = try #require(cluster.agents["c"])
        kill(cProcess.pid, SIGSTOP)
        let task = try await cluster.createTask(
            .init(zone: "z", target: .agent(c.agentId), steps: [.init(script: "echo for-c")]))
        let runForC = try #require(task.runs.first?.id)
        for _ in 0..<5 {
            let body = try JSONEncoder().encode(SyncRequest(wait: false, reports: []))
            let stamp = try PeerStamp.sign(
                method: "POST", path: "/peer/v1/sync", body: body, sender: b.agentId, zone: try #require(b.zoneId), time: Clock.nowMillis(),
                key: bKeys.signing)
            let answer = try await ZoneElectionSystemTests.post(
                port: portA, path: "/peer/v1/sync", body: body, headers: [(PeerStamp.header, stamp.headerValue)])
            #expect(answer.status == 200)
            let sync = try JSONDecoder().decode(SyncResponse.self, from: answer.body)
            #expect(!sync.runs.contains { $0.runId == runForC || $0.agentId != b.agentId })
            #expect(!sync.cancels.contains { $0.agentId != b.agentId })
            try await Task.sleep(for: .milliseconds(200))
        }
        kill(cProcess.pid, SIGCONT)
        try await eventually(60, "c runs its own run") { try await cluster.run(runForC).status == .succeeded }

        // A replayed request is refused, even word for word within the freshness window.
        let body = try JSONEncoder().encode(SyncRequest(wait: false, reports: []))
        let first = try await Self.peerPost(port: portA, path: "/peer/v1/sync", body: body, stampedBy: b)
        #expect(first.status == 200)
        #expect(try await Self.peerPost(port: portA, path: "/peer/v1/sync", body: body, stampedBy: b, stamp: first.stamp).status == 401)
        // A stamp moved to another body is refused.
        let other = try JSONEncoder().encode(SyncRequest(wait: true, reports: []))
        let moved = try PeerStamp.sign(
            method: "POST", path: "/peer/v1/sync", body: body, sender: b.agentId, zone: try #require(b.zoneId), time: Clock.nowMillis(), key: bKeys.signing)
        #expect(try await Self.peerPost(port: portA, path: "/peer/v1/sync", body: other, stampedBy: b, stamp: moved).status == 401)

        // A retired agent is refused by its former peers as soon as they hold the next membership.
        _ = try await cluster.api.retireAgent(path: .init(id: b.agentId)).ok.body.json
        try await eventually(60, "the primary refuses the retired agent") {
            try await Self.peerPost(port: portA, path: "/peer/v1/sync", body: try JSONEncoder().encode(SyncRequest(wait: false, reports: [])), stampedBy: b)
                .status == 401
        }
        let portC = try #require(cluster.peerPorts["c"])
        try await eventually(30, "the other member refuses it too") {
            try await Self.peerPost(port: portC, path: "/peer/v1/sync", body: try JSONEncoder().encode(SyncRequest(wait: false, reports: [])), stampedBy: b)
                .status == 401
        }
    }

    @Test func anUnauthenticatedHugeBodyIsRefusedBeforeItIsRead() async throws {
        let (cluster, _) = try await Self.zone()
        defer { cluster.shutdown() }
        let port = try #require(cluster.peerPorts["a"])
        // Headers announcing 16 MiB, and not one byte of body: the answer must come anyway.
        for stamp in ["", "\(PeerStamp.header): v2.\(Secrets.newID()).\(Secrets.newID()).1.\(String(repeating: "n", count: 22)).\(String(repeating: "d", count: 43)).sig\r\n"] {
            let answer = try await Self.rawExchange(
                port: port,
                head: "POST /peer/v1/sync HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(16 << 20)\r\n\(stamp)\r\n")
            #expect(answer.hasPrefix("HTTP/1.1 401"), "\(answer.prefix(200))")
        }
        // A member's body larger than the limit is refused by its declared length.
        let b = try Self.identity(cluster, "b")
        let zoneID = try #require(b.zoneId)
        let key = try b.keys().signing
        try await eventually(60, "b is in the primary's membership") {
            // Signed afresh each time: one stamp resent for a minute would go stale (the freshness window).
            let stamp = try PeerStamp.sign(
                method: "POST", path: "/peer/v1/sync", body: Data(), sender: b.agentId, zone: zoneID, time: Clock.nowMillis(), key: key)
            let answer = try await Self.rawExchange(
                port: port,
                head: "POST /peer/v1/sync HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(16 << 20)\r\n\(PeerStamp.header): \(stamp.headerValue)\r\n\r\n")
            return answer.hasPrefix("HTTP/1.1 413")
        }
    }

    @Test func aFakePeerLearnsNoSecretIsNotFollowedAndCannotCancelAnything() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "z")
        let a = try await cluster.startAgent("a", zone: "z", extraArguments: ["--priority", "100"])
        try await eventually(60, "a is elected") { try await Self.primary(cluster) == a }
        let fake = try FakePeer(directory: cluster.directory, managerURL: cluster.url)
        defer { fake.stop() }
        try await eventually(30, "the fake peer started") { FileManager.default.fileExists(atPath: fake.logPath) }

        // A new agent whose only peer is the fake: it seals its enrollment to the manager's key, so the
        // fake sees no enrollment key, and the fake cannot answer it: the agent does not enroll.
        cluster.peerPorts["fake"] = fake.port
        let state = cluster.directory + "/agents/d"
        let port = try LoopbackPort.free()
        cluster.agents["d"] = try KlevrProcess(
            ["agent", "run", "--zone", "z", "--state-dir", state, "--listen", "127.0.0.1:\(port)", "--peer", "127.0.0.1:\(fake.port)", "--log-level", "debug"],
            environment: ["KLEVR_ENROLL_KEY": cluster.enrollKey], logPath: cluster.directory + "/agent-d.log")
        try await eventually(30, "the fake received d's sealed enrollment") { fake.requests.contains { $0.path == "/peer/v1/enroll" } }
        let secret = try #require(cluster.enrollKey.split(separator: ".").first.map(String.init))
        #expect(!fake.rawLog.contains(secret))
        #expect(!fake.rawLog.contains(String(secret.dropFirst(4).prefix(16))))
        #expect(!FileManager.default.fileExists(atPath: state + "/identity.json"))

        // An agent that meets the fake first, claiming to be the primary of a huge epoch, does not follow it.
        let c = try await cluster.startAgent("c", zone: "z", viaPeers: ["fake", "a"])
        let run = try await Self.runOn(cluster, c, "sleep 1; echo done")
        #expect(run.status == .succeeded)
        #expect(try await cluster.output(run.id) == "done\n")
        #expect(!fake.requests.contains { $0.path == "/peer/v1/sync" }, "c synced with the fake peer")
        let zone = try await cluster.zone("z")
        #expect(zone.primary == a)
    }

    @Test func thePrimaryCarriesNoParameterInClear() async throws {
        let (cluster, ids) = try await Self.zone()
        defer { cluster.shutdown() }
        let marker = "param-\(Secrets.randomToken(bytes: 12))"
        let run = try await Self.runOn(cluster, try #require(ids["c"]), #"test "$KLEVR_PARAM_SECRET" = "\#(marker)" && echo matched"#, params: ["SECRET": marker])
        #expect(run.status == .succeeded)
        #expect(try await cluster.output(run.id) == "matched\n")
        // A later script that lists and reads everything under its working directory and its parent finds
        // no key, no credential and no earlier run's parameters.
        let c = try Self.identity(cluster, "c")
        let snoop = try await Self.runOn(
            cluster, c.agentId,
            #"pwd; ls -laR . .. 2>&1; find .. -type f 2>/dev/null | while read f; do echo "== $f"; cat "$f"; done; env"#)
        #expect(snoop.status == .succeeded)
        let seen = try await cluster.output(snoop.id)
        #expect(seen.contains("=="), "the snoop found nothing to read at all: \(seen.prefix(500))")
        for secret in [marker, c.credential, c.privateKey, c.sealPrivateKey ?? "-", "identity.json", "agent.key"] {
            #expect(!seen.contains(secret), "a script found \(secret.prefix(12))… under its working directory or its parent")
        }
        // Nothing the primary or the member wrote holds it: state dirs (outbox, ledger, membership) and logs at debug level.
        for name in ["a", "b", "c"] {
            let root = cluster.directory + "/agents/" + name
            let files = FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? []
            for file in files {
                let data = FileManager.default.contents(atPath: root + "/" + file) ?? Data()
                #expect(!String(decoding: data, as: UTF8.self).contains(marker), "\(name)/\(file) holds the parameter")
            }
            #expect(!(cluster.agents[name]?.log.contains(marker) ?? false), "agent \(name)'s log holds the parameter")
        }
    }

    /// Sends raw request headers and reads the beginning of the answer (within 30 s), on a thread of its
    /// own (the socket calls block).
    static func rawExchange(port: Int, head: String) async throws -> String {
        try await onOwnThreadThrowing { try blockingExchange(port: port, head: head) }
    }

    static func blockingExchange(port: Int, head: String) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        let bytes = Array(head.utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : ""
    }
}

/// A fake peer (a Python HTTP server): answers `hello` with the real manager's keys (to lure agents
/// into sending it their enrollment), `whois` as an unsigned primary of a huge epoch, `sync` with cancels
/// and acknowledgements of everything, and records every request.
final class FakePeer: @unchecked Sendable {
    let port: Int
    let logPath: String
    let process: Process

    struct Recorded: Decodable {
        var method: String
        var path: String
        var body: String
    }

    init(directory: String, managerURL: String) throws {
        port = try LoopbackPort.free()
        logPath = directory + "/fake-peer.jsonl"
        let script = directory + "/fake_peer.py"
        try Self.source.write(toFile: script, atomically: true, encoding: .utf8)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, String(port), logPath, managerURL]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        // Its log file exists once it runs: the test waits for that (not here: an initializer cannot await).
        try process.run()
    }

    var rawLog: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    var requests: [Recorded] {
        rawLog.split(separator: "\n").compactMap { try? JSONDecoder().decode(Recorded.self, from: Data($0.utf8)) }
    }

    /// SIGKILLs it (no waiting: nothing of it is read afterwards, and a `defer` must not block).
    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    static let source = #"""
    import json, sys, urllib.request, uuid
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    port, log_path, manager = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    open(log_path, "a").close()
    me = str(uuid.uuid4())

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def handle_one(self, method):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, 1 << 20)) if length else b""
            with open(log_path, "a") as log:
                log.write(json.dumps({"method": method, "path": self.path, "headers": dict(self.headers),
                                      "body": body.decode("utf-8", "replace")}) + "\n")
            status, answer = 404, {}
            if self.path.startswith("/peer/v1/hello"):
                with urllib.request.urlopen(manager + "/api/v1/agent/hello", timeout=5) as real:
                    status, answer = 200, json.loads(real.read())
            elif self.path.startswith("/peer/v1/whois"):
                status, answer = 200, {"agentId": me, "role": "primary", "primary": me,
                                       "primaryAddress": "127.0.0.1:%d" % port, "epoch": 999999999}
            elif self.path.startswith("/peer/v1/sync"):
                status, answer = 200, {"acks": {"started": [], "logs": {}, "results": [], "rejected": {}},
                                       "runs": [], "cancels": [], "heartbeatSeconds": 1}
            elif self.path.startswith("/peer/v1/enroll"):
                status, answer = 201, {"epk": "AAAA", "ct": "AAAA"}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self.handle_one("GET")

        def do_POST(self):
            self.handle_one("POST")

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
    """#
}
