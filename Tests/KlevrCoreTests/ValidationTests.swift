import Foundation
import KlevrCore
import Testing

@Suite struct ValidationTests {
    @Test(arguments: [("local", true), ("a", true), ("zone-1", true), ("", false), ("-x", false), ("Upper", false), ("a b", false),
        (String(repeating: "a", count: 63), true), (String(repeating: "a", count: 64), false), ("ä", false)])
    func names(name: String, valid: Bool) {
        #expect(Validation.isValidName(name) == valid)
    }

    @Test(arguments: [("WHO", true), ("_x1", true), ("a_B", true), ("1A", false), ("A-B", false), ("", false), ("A B", false)])
    func parameterNames(name: String, valid: Bool) {
        #expect(Validation.isValidParameterName(name) == valid)
    }

    @Test func ids() {
        #expect(Validation.isValidID(Secrets.newID()))
        #expect(!Validation.isValidID("not-an-id"))
        #expect(!Validation.isValidID(UUID().uuidString))  // uppercase is not how Klevr writes ids
        #expect(!Validation.isValidID("../../etc/passwd-0000-0000-0000-000000000"))
    }

    @Test func secretsAreRandomPrefixedAndHashed() {
        let first = Secrets.generate(.enrollKey)
        let second = Secrets.generate(.enrollKey)
        #expect(first != second)
        #expect(first.hasPrefix("kle_"))
        // 32 random bytes in base64url: 43 characters after the prefix, i.e. 256 bits.
        #expect(first.count == 4 + 43)
        #expect(Secrets.hash(first) == Secrets.hash(first))
        #expect(Secrets.hash(first).count == 64)
        #expect(!Secrets.hash(first).contains(first))
    }

    @Test func generatedPasswordsAreAlphanumericAndDiffer() {
        let passwords = (0..<200).map { _ in Secrets.randomPassword() }
        #expect(Set(passwords).count == 200)
        #expect(passwords.allSatisfy { $0.count == 22 && $0.allSatisfy { $0.isLetter || $0.isNumber } })
    }

    @Test func liveness() {
        let minute: Int64 = 60_000
        let started: Int64 = 1_000 * minute
        #expect(Liveness.evaluate(lastSeenMillis: started + 5 * minute, nowMillis: started + 5 * minute + 14_000, heartbeatMillis: 5_000,
            managerStartedMillis: started, retired: false) == .online)
        #expect(Liveness.evaluate(lastSeenMillis: started + 5 * minute, nowMillis: started + 5 * minute + 16_000, heartbeatMillis: 5_000,
            managerStartedMillis: started, retired: false) == .offline(reason: "missed heartbeats"))
        // Within 6 heartbeats of a manager restart nobody seen before is marked offline; after that, they are.
        #expect(Liveness.evaluate(lastSeenMillis: started - minute, nowMillis: started + 2_000, heartbeatMillis: 5_000,
            managerStartedMillis: started, retired: false) == .online)
        #expect(Liveness.evaluate(lastSeenMillis: started - minute, nowMillis: started + 30_000, heartbeatMillis: 5_000,
            managerStartedMillis: started, retired: false) == .online)
        #expect(Liveness.evaluate(lastSeenMillis: started - minute, nowMillis: started + 30_001, heartbeatMillis: 5_000,
            managerStartedMillis: started, retired: false) == .offline(reason: "missed heartbeats"))
        // An agent never seen gets no grace.
        #expect(Liveness.evaluate(lastSeenMillis: 0, nowMillis: started + 2_000, heartbeatMillis: 5_000,
            managerStartedMillis: started, retired: false) == .offline(reason: "missed heartbeats"))
        #expect(Liveness.evaluate(lastSeenMillis: started, nowMillis: started, heartbeatMillis: 5_000,
            managerStartedMillis: started, retired: true) == .retired)
    }
}
