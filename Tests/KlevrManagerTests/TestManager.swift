import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KlevrAPI
import KlevrCore
import KlevrManager
import KlevrStore
import Logging
import NIOCore
import Synchronization
import Testing

/// Collects every log line of a manager so that tests can search it (for leaked secrets).
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])

    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var text: String { lines.withLock { $0.joined(separator: "\n") } }

    func logger() -> Logger {
        Logger(label: "test.manager") { label in CapturingHandler(capture: self, label: label) }
    }

    struct CapturingHandler: LogHandler {
        let capture: LogCapture
        let label: String
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            capture.append("\(event.level) \(label) \(event.message) \(all)")
        }
    }
}

/// A manager on a fresh SQLite file with a known admin password and a cheap bcrypt cost.
struct TestManager {
    static let adminPassword = "admin-password-for-tests"

    let manager: Manager
    let logs: LogCapture

    /// The lease lasts a minute here: these tests take their steps by hand, and on a loaded machine more
    /// than the default 2.5 s can pass between electing a primary and its next sync. Lease expiry is
    /// tested in the store suites with a clock, not here.
    /// - Parameter runsScheduler: false for tests that take the scheduler's passes by hand
    ///   (`RunScheduler.pass(now:)`): the manager's own scheduler, on the real clock, could otherwise fire
    ///   an occurrence before the test's pass when a slow set-up crosses its time.
    static func make(longPollSeconds: Double = 2, leaseMillis: Int64 = 60_000, runsScheduler: Bool = true) async throws -> TestManager {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("klevr-manager-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let logs = LogCapture()
        var config = ManagerConfig(
            host: "127.0.0.1", port: 0, database: .sqlite(path: directory.appendingPathComponent("klevr.db").path),
            adminPassword: adminPassword, heartbeatSeconds: 5, longPollSeconds: longPollSeconds, redeliverAfterSeconds: 10, bcryptCost: 4,
            leaseMillis: leaseMillis)
        config.runsScheduler = runsScheduler
        let (manager, generated) = try await Manager.bootstrap(config: config, logger: logs.logger())
        #expect(generated == nil)
        return TestManager(manager: manager, logs: logs)
    }

    /// Runs `body` against the manager's router in-process.
    /// The store is closed afterwards whatever the body did: an SQLite connection left open until it
    /// is deinitialized stops the whole test process on a debug assertion.
    func test(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let app = manager.application()
        do {
            try await app.test(.router, body)
        } catch {
            await manager.store.database.close()
            throw error
        }
        await manager.store.database.close()
    }
}

// MARK: - Request helpers

extension TestClientProtocol {
    /// Sends JSON and returns status and body.
    @discardableResult
    func call(
        _ method: HTTPRequest.Method, _ uri: String, token: String? = nil, json: String? = nil, headers: HTTPFields = [:]
    ) async throws -> (status: HTTPResponse.Status, body: String, headers: HTTPFields) {
        var fields = headers
        if let token { fields[.authorization] = "Bearer \(token)" }
        if json != nil { fields[.contentType] = "application/json" }
        return try await execute(uri: uri, method: method, headers: fields, body: json.map { ByteBuffer(string: $0) }) { response in
            (response.status, String(buffer: response.body), response.headers)
        }
    }

    /// Sends and decodes, expecting one status.
    func decode<T: Decodable>(
        _ type: T.Type, _ method: HTTPRequest.Method, _ uri: String, token: String?, body: (some Encodable)? = nil as String?,
        expect status: HTTPResponse.Status = .ok, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> T {
        let json = try body.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        let answer = try await call(method, uri, token: token, json: json)
        #expect(answer.status == status, "\(method) \(uri): \(answer.body)", sourceLocation: sourceLocation)
        return try JSONDecoder().decode(T.self, from: Data(answer.body.utf8))
    }

    /// Logs in as the user and creates an API token, through the generated client.
    func token(_ username: String = "admin", _ password: String = TestManager.adminPassword) async throws -> String {
        let opened = try await session(username, password)
        return try await api(headers: opened.headers).createToken(body: .json(.init(name: "test"))).created.body.json.token
    }

    /// Creates a user with a role through the generated client and returns an API token of theirs.
    func user(_ name: String, role: Role, admin: String) async throws -> String {
        let password = "password-of-\(name)"
        let wireRole = try #require(Components.Schemas.Role(rawValue: role.rawValue))
        let created = try await api(token: admin).createUser(body: .json(.init(username: name, password: password, role: wireRole)))
        #expect(try created.created.body.json.username == name)
        return try await token(name, password)
    }

    /// Creates a zone and an enrollment key through the generated client; returns the key.
    func zoneWithKey(
        _ zone: String, admin: String, expiresIn: Int? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> Components.Schemas.EnrollKeyCreated {
        let api = try api(token: admin)
        let created = try await api.createZone(body: .json(.init(name: zone)))
        #expect(try created.created.body.json.name == zone, sourceLocation: sourceLocation)
        let key = try await api.createEnrollKey(path: .init(zone: zone), body: .json(.init(expiresInSeconds: expiresIn)))
        return try key.created.body.json
    }

    /// Enrolls an agent with a fresh public key.
    func enroll(zone: String, key: String, signingKey: Curve25519.Signing.PrivateKey = .init()) async throws -> EnrollResponse {
        try await enrolled(zone: zone, key: key, signingKey: signingKey).answer
    }

    /// Enrolls an agent with fresh keys (proof of possession signed with `signingKey`).
    func enrolled(zone: String, key: String, signingKey: Curve25519.Signing.PrivateKey = .init()) async throws -> TestEnrolledAgent {
        let sealKey = Curve25519.KeyAgreement.PrivateKey()
        let answer = try await decode(
            EnrollResponse.self, .post, "/api/v1/agent/enroll", token: nil,
            body: try EnrollRequest.proving(
                zone: zone, enrollKey: key, key: signingKey, sealKey: sealKey.publicKey,
                facts: HostFacts(hostname: "h", os: "linux", version: "t", addresses: []), time: Clock.nowMillis()),
            expect: .created)
        return TestEnrolledAgent(answer: answer, signingKey: signingKey, sealKey: sealKey)
    }
}

/// An agent enrolled by a test, with its keys.
struct TestEnrolledAgent {
    var answer: EnrollResponse
    var signingKey: Curve25519.Signing.PrivateKey
    var sealKey: Curve25519.KeyAgreement.PrivateKey
    var agentId: String { answer.agentId }
    var credential: String { answer.credential }
}
