import Foundation
import KlevrAPI
import KlevrAgent
import KlevrClient
import NIOCore
import NIOHTTP1
import KlevrTestSupport
import Testing

/// HTTPS between the manager, the CLI and agents, with a certificate the test makes with `openssl`.
@Suite(.serialized, .timeLimit(.minutes(5)), .waitsForProcesses)
struct TLSSystemTests {
    /// A self-signed certificate for 127.0.0.1 and its key, in `directory`, with its pin as `openssl`
    /// computes it (SHA-256 of the DER SubjectPublicKeyInfo), independently of the code under test.
    static func makeCertificate(in directory: String, name: String = "manager") async throws -> (certificate: String, key: String, pin: String) {
        let certificate = directory + "/\(name)-cert.pem"
        let key = directory + "/\(name)-key.pem"
        let created = try await shell(
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=klevr-test "
                + "-addext subjectAltName=IP:127.0.0.1 -keyout '\(key)' -out '\(certificate)'")
        try #require(created.status == 0, "openssl req: \(created.output)")
        let digest = try await shell("openssl x509 -in '\(certificate)' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -r")
        try #require(digest.status == 0, "openssl dgst: \(digest.output)")
        let hex = String(digest.output.prefix { $0.isHexDigit })
        try #require(hex.count == 64, "openssl dgst printed \(digest.output)")
        return (certificate, key, "sha256:" + hex)
    }

    /// Runs `command` with `/bin/sh` to its end, on a thread of its own (reading its output and waiting
    /// for it block).
    static func shell(_ command: String) async throws -> (status: Int32, output: String) {
        try await onOwnThreadThrowing { try blockingShell(command) }
    }

    static func blockingShell(_ command: String) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitForExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Waits for a process to end by itself, at most `seconds`; kills it otherwise.
    static func exitStatus(of process: KlevrProcess, within seconds: Double) async throws -> Int32? {
        let deadline = ContinuousClock.now + .seconds(TestTime.scaled(seconds))
        while process.process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        if process.process.isRunning {
            await process.kill9()
            return nil
        }
        return process.process.terminationStatus
    }

    @Test func anAgentThatPinsTheManagersCertificateWorksOverHTTPSAndAWrongPinIsRefused() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        let tls = try await Self.makeCertificate(in: cluster.directory)
        cluster.scheme = "https"
        cluster.managerArguments = ["--tls-cert", tls.certificate, "--tls-key", tls.key]
        // The test's own client trusts the certificate as a CA (it names 127.0.0.1).
        cluster.clientTrust = try #require(try ServerTrust.fromOptions(caFile: tls.certificate, pin: nil))
        try await cluster.startManager()
        try await eventually(30, "the manager prints its certificate's pin") {
            cluster.manager?.log.contains("TLS certificate pin: \(tls.pin)") == true
        }
        #expect(cluster.manager?.log.contains("klevr agent --manager https://127.0.0.1:\(cluster.port) --ca-pin \(tls.pin)") == true)

        // Plain HTTP gets no answer from the HTTPS port.
        await #expect(throws: (any Error).self) {
            _ = try await RawHTTP.send(.GET, "http://127.0.0.1:\(cluster.port)/healthz", timeout: .seconds(5))
        }

        // The CLI logs in with the pin and keeps it; the session cookie is Secure over TLS.
        try await cluster.bootstrap(zone: "tls", loginArguments: ["--ca-pin", tls.pin])
        let saved = try String(contentsOfFile: cluster.directory + "/cli.json", encoding: .utf8)
        #expect(saved.contains(tls.pin), "\(saved)")
        let login = try await cluster.client(credential: nil).login(body: .json(.init(username: "admin", password: Cluster.password))).ok
        let cookie = login.headers.setCookie ?? ""
        #expect(cookie.contains("Secure"), "\(cookie)")
        #expect(cookie.contains("HttpOnly"), "\(cookie)")

        // The command printed for a new key carries the pin.
        let created = try await cluster.runCLI(["zone", "enroll-key", "create", "tls"])
        #expect(created.status == 0, "\(created.output)")
        #expect(created.output.contains("--manager \(cluster.url) --ca-pin \(tls.pin)"), "\(created.output)")

        // An agent that pins the certificate enrolls and runs a task through the CLI over HTTPS (named, not
        // --any: an agent that just enrolled may not count as online yet on a loaded machine).
        let pinned = try await cluster.startAgent("a", zone: "tls", extraArguments: ["--ca-pin", tls.pin])
        let ran = try await cluster.runCLI(["task", "run", "--zone", "tls", "--agent", pinned, "--", "echo over-$((20 + 22))-tls"])
        #expect(ran.status == 0, "\(ran.output)")
        #expect(ran.output.contains("over-42-tls"), "\(ran.output)")
        let pinnedLine = "verifying the manager's TLS certificate"
        #expect(cluster.agents["a"]?.log.contains(pinnedLine) == true)

        // Restarted without --ca-pin, it keeps verifying with the pin saved in its state dir.
        await cluster.agents["a"]?.stop()
        let restarted = try await cluster.startAgent("a", zone: "tls")
        // (Its log file starts anew with the process.)
        try await eventually(60, "the restarted agent checks the pinned certificate again") {
            cluster.agents["a"]?.log.contains("trust=the pinned key \(tls.pin)") == true
        }
        try await eventually(30, "the restarted agent is online again") {
            let agents = try await cluster.agents(zone: "tls")
            return agents.contains { $0.status == .online }
        }
        // Named, not --any: on a loaded machine the agent may miss a heartbeat between the check above and
        // the task, and --any needs an agent online at that instant.
        let again = try await cluster.runCLI(["task", "run", "--zone", "tls", "--agent", restarted, "--", "echo still-pinned"])
        #expect(again.status == 0 && again.output.contains("still-pinned"), "\(again.output)")

        // A wrong pin: the agent stops with both pins named and never enrolls.
        let wrongPin = "sha256:" + String(repeating: "ab", count: 32)
        let state = cluster.directory + "/agents/wrong"
        let wrong = try KlevrProcess(
            ["agent", "run", "--zone", "tls", "--state-dir", state, "--listen", "127.0.0.1:\(try LoopbackPort.free())", "--manager", cluster.url,
             "--ca-pin", wrongPin],
            environment: ["KLEVR_ENROLL_KEY": cluster.enrollKey], logPath: cluster.directory + "/agent-wrong.log")
        let status = try await Self.exitStatus(of: wrong, within: 90)
        #expect(status != nil && status != 0, "the agent with a wrong pin did not stop by itself: \(wrong.log)")
        #expect(wrong.log.contains("refusing to talk to \(cluster.url)"), "\(wrong.log)")
        #expect(wrong.log.contains("pin \(tls.pin), not the expected \(wrongPin)"), "\(wrong.log)")
        #expect(!FileManager.default.fileExists(atPath: state + "/identity.json"))

        // The CLI refuses a wrong pin the same way and keeps the saved login.
        let refused = try await cluster.runCLI(
            ["login", "--server", cluster.url, "--username", "admin", "--password", Cluster.password, "--ca-pin", wrongPin])
        #expect(refused.status != 0)
        #expect(refused.output.contains("not the expected \(wrongPin)"), "\(refused.output)")
        #expect(try String(contentsOfFile: cluster.directory + "/cli.json", encoding: .utf8) == saved)
    }

    @Test func aPinNeedsASelfSignedCertificateAndACAFileWorksForACertificateItIssued() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        let dir = cluster.directory
        try "subjectAltName=IP:127.0.0.1\n".write(toFile: dir + "/leaf.ext", atomically: true, encoding: .utf8)
        let made = try await Self.shell(
            """
            set -e; cd '\(dir)'
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=klevr-test-ca -keyout ca-key.pem -out ca.pem
            openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=klevr-test-manager -keyout leaf-key.pem -out leaf.csr
            openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile leaf.ext -out leaf.pem
            openssl x509 -in leaf.pem -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -r
            """)
        try #require(made.status == 0, "openssl: \(made.output)")
        let hex = try #require(made.output.split(separator: "\n").last.map { String($0.prefix { $0.isHexDigit }) })
        try #require(hex.count == 64, "\(made.output)")
        let pin = "sha256:" + hex
        cluster.scheme = "https"
        cluster.managerArguments = ["--tls-cert", dir + "/leaf.pem", "--tls-key", dir + "/leaf-key.pem"]
        cluster.clientTrust = try #require(try ServerTrust.fromOptions(caFile: dir + "/ca.pem", pin: nil))
        try await cluster.startManager()
        try await eventually(30, "the manager prints its certificate's pin") { cluster.manager?.log.contains("TLS certificate pin: \(pin)") == true }

        // The pin matches, but the certificate is issued by a CA: refused with the reason, nothing saved.
        let pinned = try await cluster.runCLI(
            ["login", "--server", cluster.url, "--username", "admin", "--password", Cluster.password, "--ca-pin", pin])
        #expect(pinned.status != 0)
        #expect(pinned.output.contains("cannot be trusted on its own"), "\(pinned.output)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/cli.json"))

        // The issuing CA verifies it (with the host name), and later commands use the saved CA.
        let withCA = try await cluster.runCLI(
            ["login", "--server", cluster.url, "--username", "admin", "--password", Cluster.password, "--ca", dir + "/ca.pem"])
        #expect(withCA.status == 0, "\(withCA.output)")
        let listed = try await cluster.runCLI(["zone", "list"])
        #expect(listed.status == 0, "\(listed.output)")
        #expect(listed.output.contains("NAME"), "\(listed.output)")
    }

    @Test func aManagerBeyondLoopbackRefusesPlainHTTPUnlessTold() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        let dataDir = cluster.directory + "/refused"
        for listen in ["0.0.0.0:\(cluster.port)", "[::]:\(cluster.port)"] {
            let manager = try KlevrProcess(
                ["manager", "--data-dir", dataDir, "--listen", listen, "--admin-password", Cluster.password],
                logPath: cluster.directory + "/refused.log")
            let status = try await Self.exitStatus(of: manager, within: 90)
            #expect(status != nil && status != 0, "\(manager.log)")
            #expect(manager.log.contains("refusing to serve plain HTTP on"), "\(manager.log)")
            #expect(manager.log.contains("--insecure-http"), "\(manager.log)")
        }
        #expect(!FileManager.default.fileExists(atPath: dataDir), "a refused start created its data dir")

        // Half a TLS configuration is refused too.
        let half = try KlevrProcess(
            ["manager", "--data-dir", dataDir, "--listen", "127.0.0.1:\(cluster.port)", "--tls-cert", cluster.directory + "/missing.pem"],
            logPath: cluster.directory + "/half.log")
        let halfStatus = try await Self.exitStatus(of: half, within: 90)
        #expect(halfStatus != nil && halfStatus != 0)
        #expect(half.log.contains("--tls-cert and --tls-key go together"), "\(half.log)")

        // With --insecure-http it starts (a TLS proxy in front is assumed), and its cookie is Secure.
        cluster.manager = try KlevrProcess(
            ["manager", "--data-dir", cluster.directory + "/manager", "--listen", "0.0.0.0:\(cluster.port)", "--admin-password", Cluster.password,
             "--insecure-http"],
            logPath: cluster.directory + "/manager.log")
        let probe = try cluster.client(credential: nil, timeout: .seconds(2))
        try await eventually(30, "the manager answers /readyz") {
            (try? await probe.ready().ok) != nil
        }
        let login = try await cluster.client(credential: nil).login(body: .json(.init(username: "admin", password: Cluster.password))).ok
        #expect(login.headers.setCookie?.contains("Secure") == true)
    }
}
