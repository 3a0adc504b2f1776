import AsyncHTTPClient
import Foundation
import KlevrAPI
import KlevrClient
import NIOCore

/// The agent's calls to the manager's API, through the generated client: the agent protocol
/// (`agentHello`, `enrollAgentSealed`, `agentSync`, `agentLease`). Each call says how long it may
/// wait (a long poll waits longer than a lease request), so a client is made per call on the agent's
/// one HTTP client; making one costs nothing.
struct ManagerLink: Sendable {
    let config: ManagerClientConfig
    let http: HTTPClient

    /// - Throws: ``ManagerClientConfig/InvalidServerURL`` for a URL that is not http(s).
    init(server: String, credential: String?, http: HTTPClient) throws {
        self.config = try ManagerClientConfig(server: server, credential: credential.map { .bearer($0) })
        self.http = http
    }

    private func client(timeout: TimeAmount) -> Client {
        var config = self.config
        config.timeout = .nanoseconds(timeout.nanoseconds)
        return ManagerClient.make(config, http: http)
    }

    /// The manager's public keys and clock.
    func hello(timeout: TimeAmount) async throws -> ManagerHello {
        try await client(timeout: timeout).agentHello().ok.body.json
    }

    /// A sealed enrollment; the answer is sealed to the agent.
    func enroll(_ sealed: SealedEnrollment, timeout: TimeAmount) async throws -> SealedBox {
        try await client(timeout: timeout).enrollAgentSealed(body: .json(sealed)).created.body.json
    }

    func sync(_ request: SyncRequest, timeout: TimeAmount) async throws -> SyncResponse {
        try await client(timeout: timeout).agentSync(body: .json(request)).ok.body.json
    }

    func lease(_ request: LeaseRequest, timeout: TimeAmount) async throws -> LeaseResponse {
        try await client(timeout: timeout).agentLease(body: .json(request)).ok.body.json
    }

    /// The manager's refusal behind a failed call (an answer outside 2xx), or nil when the call failed
    /// otherwise (no connection, a timeout, an answer that does not decode).
    static func refusal(in error: any Error) -> ManagerRefusal? {
        ManagerClient.cause(of: error) as? ManagerRefusal
    }
}
