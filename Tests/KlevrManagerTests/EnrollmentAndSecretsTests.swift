import Crypto
import Foundation
import HTTPTypes
import HummingbirdTesting
import KlevrAPI
import KlevrCore
import KlevrManager
import KlevrStore
import Testing

@Suite struct EnrollmentAndSecretsTests {
    /// A signed enrollment (proof of possession) for a fresh key pair.
    static func enrollBody(zone: String, key: String, signingKey: Curve25519.Signing.PrivateKey = .init(), time: Int64 = Clock.nowMillis()) -> String {
        let request = try! EnrollRequest.proving(
            zone: zone, enrollKey: key, key: signingKey, sealKey: Curve25519.KeyAgreement.PrivateKey().publicKey,
            facts: HostFacts(hostname: "h", os: "l", version: "1", addresses: []), time: time)
        return String(decoding: try! JSONEncoder().encode(request), as: UTF8.self)
    }

    @Test func enrollmentNeedsProofOfPossessionAndIsNotReplayable() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            let key = try await client.zoneWithKey("zone-a", admin: admin)
            let victim = Curve25519.Signing.PrivateKey()
            let genuine = Self.enrollBody(zone: "zone-a", key: key.key, signingKey: victim)
            #expect(try await client.call(.post, "/api/v1/agent/enroll", json: genuine).status == .created)

            // Someone else's public key with a proof made by another key: refused.
            var stolen = try JSONDecoder().decode(EnrollRequest.self, from: Data(genuine.utf8))
            stolen.proofTime = Clock.nowMillis() + 1
            stolen.proof = try Curve25519.Signing.PrivateKey().signature(for: stolen.statement()).base64EncodedString()
            let impostor = try await client.call(.post, "/api/v1/agent/enroll", json: String(decoding: try JSONEncoder().encode(stolen), as: UTF8.self))
            #expect(impostor.status == .unauthorized)
            // An empty proof: refused.
            stolen.proof = ""
            #expect(try await client.call(.post, "/api/v1/agent/enroll", json: String(decoding: try JSONEncoder().encode(stolen), as: UTF8.self)).status == .unauthorized)
            // No proof at all: the document requires one, so the request is invalid (422 naming the field) and enrolls nobody.
            var object = try #require(try JSONSerialization.jsonObject(with: try JSONEncoder().encode(stolen)) as? [String: Any])
            object["proof"] = nil
            let unproven = try await client.call(
                .post, "/api/v1/agent/enroll", json: String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self))
            #expect(unproven.status == .unprocessableContent)
            #expect(unproven.body.contains("proof"))
            // The victim's own request replayed: refused (its statement is not newer than the last).
            #expect(try await client.call(.post, "/api/v1/agent/enroll", json: genuine).status == .unauthorized)
            // A statement far from the manager's clock: refused.
            let stale = Self.enrollBody(zone: "zone-a", key: key.key, time: Clock.nowMillis() - 3_600_000)
            #expect(try await client.call(.post, "/api/v1/agent/enroll", json: stale).status == .unauthorized)
            // Extreme times are refused, not a crash.
            for time in [Int64.min, Int64.max, 0] {
                let extreme = Self.enrollBody(zone: "zone-a", key: key.key, time: time)
                #expect(try await client.call(.post, "/api/v1/agent/enroll", json: extreme).status == .unauthorized)
            }
            // The victim re-enrolling with a fresh statement keeps its id.
            #expect(try await client.call(.post, "/api/v1/agent/enroll", json: Self.enrollBody(zone: "zone-a", key: key.key, signingKey: victim)).status == .created)
            let agents = try await client.api(token: admin).listAgents().ok.body.json
            #expect(agents.items.count == 1)
        }
    }

    @Test func wrongRevokedAndExpiredKeysAreRefused() async throws {
        let harness = try await TestManager.make()
        let store = harness.manager.store
        try await harness.test { client in
            let admin = try await client.token()
            let key = try await client.zoneWithKey("zone-a", admin: admin)
            _ = try await client.api(token: admin).createZone(body: .json(.init(name: "zone-b"))).created

            let wrong = try await client.call(.post, "/api/v1/agent/enroll", json: Self.enrollBody(zone: "zone-a", key: "kle_wrong"))
            #expect(wrong.status == .unauthorized)
            let otherZone = try await client.call(.post, "/api/v1/agent/enroll", json: Self.enrollBody(zone: "zone-b", key: key.key))
            #expect(otherZone.status == .unauthorized)

            // An expired key (stored directly: the API's shortest expiry is a minute).
            let expired = Secrets.generate(.enrollKey)
            _ = try await store.createEnrollKey(
                zoneName: "zone-a", keyHash: Secrets.hash(expired), prefix: "kle_", now: Clock.nowMillis() - 10_000,
                expiresAt: Clock.nowMillis() - 1, actor: .system)
            #expect(try await client.call(.post, "/api/v1/agent/enroll", json: Self.enrollBody(zone: "zone-a", key: expired)).status == .unauthorized)

            let accepted = try await client.call(.post, "/api/v1/agent/enroll", json: Self.enrollBody(zone: "zone-a", key: key.key))
            #expect(accepted.status == .created)
            #expect(try await client.call(.delete, "/api/v1/zones/zone-a/enroll-keys/\(key.id)", token: admin).status == .noContent)
            let revoked = try await client.call(.post, "/api/v1/agent/enroll", json: Self.enrollBody(zone: "zone-a", key: key.key))
            #expect(revoked.status == .unauthorized)
            #expect(try JSONDecoder().decode(ProblemDocument.self, from: Data(revoked.body.utf8)).type.hasSuffix("enroll-refused"))

            // Rotation: the old key stops working, the new one works.
            let api = try client.api(token: admin)
            let fresh = try await api.createEnrollKey(path: .init(zone: "zone-a"), body: .json(.init())).created.body.json
            let rotated = try await api.rotateEnrollKey(path: .init(zone: "zone-a", id: fresh.id), body: .json(.init())).created.body.json
            #expect(try await client.call(.post, "/api/v1/agent/enroll", json: Self.enrollBody(zone: "zone-a", key: fresh.key)).status == .unauthorized)
            #expect(try await client.call(.post, "/api/v1/agent/enroll", json: Self.enrollBody(zone: "zone-a", key: rotated.key)).status == .created)
        }
    }

    @Test func secretsAreNeverReturnedAgainNorLogged() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            let viewer = try await client.user("vic", role: .viewer, admin: admin)
            let key = try await client.zoneWithKey("zone-a", admin: admin)
            let agent = try await client.enroll(zone: "zone-a", key: key.key)
            let secrets = [TestManager.adminPassword, "password-of-vic", admin, viewer, key.key, agent.credential]

            // Everything readable afterwards, as admin.
            var readable = ""
            for uri in ["/api/v1/zones", "/api/v1/zones/zone-a", "/api/v1/zones/zone-a/enroll-keys", "/api/v1/agents", "/api/v1/agents/\(agent.agentId)",
                "/api/v1/users", "/api/v1/tokens", "/api/v1/me", "/api/v1/tasks", "/api/v1/runs"]
            {
                let answer = try await client.call(.get, uri, token: admin)
                #expect(answer.status == .ok, "\(uri)")
                readable += answer.body
            }
            // Use every secret once more so that any request logging would see them.
            _ = try await client.call(.post, "/api/v1/agent/sync", token: agent.credential, json: #"{"wait":false,"reports":[]}"#)
            _ = try await client.call(.post, "/api/v1/agent/enroll", json: EnrollmentAndSecretsTests.enrollBody(zone: "zone-a", key: key.key + "x"))
            for secret in secrets {
                #expect(!readable.contains(secret), "a secret is readable through the API")
                #expect(!harness.logs.text.contains(secret), "a secret is in the manager's log")
            }
            #expect(!harness.logs.text.isEmpty, "the capture saw the manager's log")
        }
    }
}
