import Crypto
import Foundation
import HTTPTypes
import HummingbirdTesting
import KlevrAPI
import KlevrCore
import KlevrManager
import Testing

/// Write routes check all of their input before they change anything: a refused request leaves no trace.
@Suite struct ValidateBeforeWriteTests {
    @Test func anEnrollmentWithABadPeerAddressCreatesNoAgent() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            let key = try await client.zoneWithKey("zone-a", admin: admin).key
            let facts = HostFacts(hostname: "h", os: "linux", version: "t", addresses: [])
            for address in ["not an address", "host:99999", String(repeating: "a", count: 300) + ":80"] {
                let request = try EnrollRequest.proving(
                    zone: "zone-a", enrollKey: key, key: .init(), sealKey: Curve25519.KeyAgreement.PrivateKey().publicKey, facts: facts,
                    peerAddress: address, time: Clock.nowMillis())
                let json = String(decoding: try JSONEncoder().encode(request), as: UTF8.self)
                let answer = try await client.call(.post, "/api/v1/agent/enroll", json: json)
                #expect(answer.status == .unprocessableContent, "\(address): \(answer.body)")
            }
            // Bad host facts too.
            let badFacts = try EnrollRequest.proving(
                zone: "zone-a", enrollKey: key, key: .init(), sealKey: Curve25519.KeyAgreement.PrivateKey().publicKey,
                facts: HostFacts(hostname: "", os: "linux", version: "t", addresses: []), time: Clock.nowMillis())
            let answer = try await client.call(.post, "/api/v1/agent/enroll", json: String(decoding: try JSONEncoder().encode(badFacts), as: UTF8.self))
            #expect(answer.status == .unprocessableContent)
            let agents = try await client.api(token: admin).listAgents().ok.body.json
            #expect(agents.items.isEmpty, "\(agents.items.map(\.id))")
        }
    }

    @Test func aTaskWithABadScheduleOrDeadlineIsRefusedAndStoresNothing() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            _ = try await client.zoneWithKey("zone-a", admin: admin)
            let cases: [(body: String, field: String)] = [
                (#""runAt": -1"#, "runAt"),
                (#""runAt": 4102444800001"#, "runAt"),
                (#""runAt": "tomorrow""#, "runAt"),
                (#""deliverWithinSeconds": 0"#, "deliverWithinSeconds"),
                (#""deliverWithinSeconds": 2592001"#, "deliverWithinSeconds"),
            ]
            for (extra, field) in cases {
                let json = #"{"zone": "zone-a", "target": {"kind": "all"}, "steps": [{"script": "true"}], "# + extra + "}"
                let answer = try await client.call(.post, "/api/v1/tasks", token: admin, json: json)
                #expect(answer.status == .unprocessableContent, "\(extra): \(answer.body)")
                #expect(answer.body.contains(field), "\(extra): \(answer.body)")
            }
            let tasks = try await client.api(token: admin).listTasks().ok.body.json
            #expect(tasks.items.isEmpty)
        }
    }

    @Test func refusedZoneAndKeyWritesChangeNothing() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let admin = try await client.token()
            #expect(try await client.call(.post, "/api/v1/zones", token: admin, json: #"{"name":"ok","description":"\#(String(repeating: "d", count: 1001))"}"#).status == .unprocessableContent)
            #expect(try await client.api(token: admin).listZones().ok.body.json.items.isEmpty)
            _ = try await client.zoneWithKey("zone-a", admin: admin)
            #expect(try await client.call(.post, "/api/v1/zones/zone-a/enroll-keys", token: admin, json: #"{"expiresInSeconds":5}"#).status == .unprocessableContent)
            #expect(try await client.api(token: admin).listEnrollKeys(path: .init(zone: "zone-a")).ok.body.json.items.count == 1)
            // The same name twice is a conflict (409), not an internal error.
            #expect(try await client.call(.post, "/api/v1/zones", token: admin, json: #"{"name":"zone-a"}"#).status == .conflict)
        }
    }
}
