import Foundation
import HTTPTypes
import HummingbirdTesting
import KlevrAPI
import KlevrCore
@testable import KlevrManager
import KlevrStore
import Testing

/// Failed logins slow down the client address that makes them, in memory that does not depend on the
/// user names sent; unknown names take the same path (a bcrypt verification) as known ones.
@Suite struct LoginThrottleTests {
    @Test func failuresSlowDownTheirAddressOnly() {
        var state = LoginThrottleState(capacity: 100, freeFailures: 3, maxDelayMillis: 60_000, forgetAfterMillis: 600_000)
        let now: Int64 = 1_000_000
        for _ in 0..<4 { #expect(state.admit("10.0.0.1", now: now) == 0) }
        // The fifth attempt must wait 2 s after the fourth failure; another address is not affected.
        #expect(state.admit("10.0.0.1", now: now) == 2_000)
        #expect(state.admit("10.0.0.2", now: now) == 0)
        state.recordSuccess("10.0.0.2")
        #expect(state.admit("10.0.0.1", now: now + 2_000) == 0)
        #expect(state.admit("10.0.0.1", now: now + 2_000) == 4_000)
        // The wait is capped, and a success forgets the address.
        for step in 1...30 { _ = state.admit("10.0.0.1", now: now + Int64(step) * 70_000) }
        #expect(state.waitMillis("10.0.0.1", now: now + 30 * 70_000) == 60_000)
        state.recordSuccess("10.0.0.1")
        #expect(state.admit("10.0.0.1", now: now + 30 * 70_000) == 0)
    }

    @Test func anAddressIsForgottenAfterAQuietPeriod() {
        var state = LoginThrottleState(capacity: 100, freeFailures: 0, maxDelayMillis: 60_000, forgetAfterMillis: 10_000)
        #expect(state.admit("a", now: 0) == 0)
        #expect(state.admit("a", now: 0) == 2_000)
        #expect(state.admit("a", now: 10_000) == 0)
        #expect(state.entries["a"]?.failures == 1)
    }

    @Test func theTableIsBoundedAndKeepsTheNewestEntries() {
        var state = LoginThrottleState(capacity: 1_000, freeFailures: 2, maxDelayMillis: 60_000, forgetAfterMillis: 600_000)
        for _ in 0..<5 { _ = state.admit("attacker", now: 500_000) }
        for index in 0..<20_000 { _ = state.admit("flood-\(index)", now: Int64(index)) }
        #expect(state.entries.count <= 1_000)
        // The flood's older entries gave way, not the newest failure of all.
        #expect(state.waitMillis("attacker", now: 500_000) > 0)
    }

    @Test func ipv6AddressesShareTheirSlash64() {
        #expect(LoginThrottleState.key(forAddress: "2001:db8:1:2:aaaa::1") == LoginThrottleState.key(forAddress: "2001:db8:1:2::ffff"))
        #expect(LoginThrottleState.key(forAddress: "2001:db8:1:2::1") != LoginThrottleState.key(forAddress: "2001:db8:1:3::1"))
        #expect(LoginThrottleState.key(forAddress: "::1") == "v6:0:0:0:0")
        #expect(LoginThrottleState.key(forAddress: "127.0.0.1") == "127.0.0.1")
        #expect(LoginThrottleState.key(forAddress: nil) == "unknown")
    }

    @Test func theLoginRouteChargesTheClientAddressAndAnswers429() async throws {
        let base = try await TestManager.make()
        // A first delay of a minute (not the default 2 s), so that a loaded machine's slow requests do not
        // outlast it between the last failure and the blocked attempt.
        let manager = Manager(
            config: base.manager.config, store: base.manager.store, logger: base.manager.logger, hub: base.manager.hub,
            passwords: base.manager.passwords, throttle: LoginThrottle(state: LoginThrottleState(firstDelayMillis: 60_000)),
            startedAt: base.manager.startedAt, operations: base.manager.operations)
        let harness = TestManager(manager: manager, logs: base.logs)
        try await harness.test { client in
            let limit = LoginThrottleState().freeFailures
            for index in 0...limit {
                let answer = try await client.call(.post, "/api/v1/auth/login", json: #"{"username":"user-\#(index)","password":"wrong"}"#)
                #expect(answer.status == .unauthorized)
            }
            let blocked = try await client.call(
                .post, "/api/v1/auth/login", json: #"{"username":"admin","password":"\#(TestManager.adminPassword)"}"#)
            #expect(blocked.status == .tooManyRequests)
            #expect(Int(blocked.headers[.retryAfter] ?? "") ?? 0 >= 1)
            // Distinct names were not kept: one address, one entry.
            #expect(await harness.manager.throttle.trackedAddresses == 1)
        }
    }

    @Test func unknownNamesAreVerifiedAgainstADummyHash() async throws {
        let harness = try await TestManager.make()
        let passwords = harness.manager.passwords
        try await harness.test { client in
            #expect(passwords.unknownUserVerifications == 0)
            let unknown = try await client.call(.post, "/api/v1/auth/login", json: #"{"username":"nobody","password":"x"}"#)
            #expect(unknown.status == .unauthorized)
            #expect(passwords.unknownUserVerifications == 1)
            // A name too long to exist is not looked up, but still costs a verification.
            let long = String(repeating: "n", count: 1_000)
            let tooLong = try await client.call(.post, "/api/v1/auth/login", json: #"{"username":"\#(long)","password":"x"}"#)
            #expect(tooLong.status == .unauthorized)
            #expect(passwords.unknownUserVerifications == 2)
            // A known name with a wrong password takes the real hash, not the dummy one.
            let known = try await client.call(.post, "/api/v1/auth/login", json: #"{"username":"admin","password":"x"}"#)
            #expect(known.status == .unauthorized)
            #expect(passwords.unknownUserVerifications == 2)
        }
    }

    @Test func aHugeLoginBodyIsRefusedBeforeItIsRead() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let name = String(repeating: "a", count: 1 << 20)
            let answer = try await client.call(.post, "/api/v1/auth/login", json: #"{"username":"\#(name)","password":"x"}"#)
            #expect(answer.status == .contentTooLarge)
            #expect(harness.manager.passwords.unknownUserVerifications == 0)
        }
    }

    @Test func theRealClientAddressIsTheKey() async throws {
        let harness = try await TestManager.make()
        let app = harness.manager.application()
        try await app.test(.live) { client in
            let answer = try await client.call(.post, "/api/v1/auth/login", json: #"{"username":"admin","password":"wrong"}"#)
            #expect(answer.status == .unauthorized)
        }
        #expect(await harness.manager.throttle.failures(of: "127.0.0.1") == 1)
        // The application's services were cancelled with the test's server: close the store here, or its
        // SQLite connection may be deinitialized open (a debug assertion that stops the whole test process).
        await harness.manager.store.database.close()
    }
}
