import Foundation
import KlevrCore
import Testing

@Suite struct WebhookSigningTests {
    /// Known answers computed independently with Python's `hmac` module:
    /// `python3 -c 'import hmac,hashlib,base64; key=base64.b64decode(SECRET[6:]);
    ///  print("v1,"+base64.b64encode(hmac.new(key, (ID+"."+str(TS)+".").encode()+BODY, hashlib.sha256).digest()).decode())'`.
    /// The first is also the example of the Standard Webhooks reference libraries.
    static let vectors: [(secret: String, id: String, timestamp: Int64, body: String, signature: String)] = [
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, "{\"test\": 2432232314}",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
        ("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "msg_klevr_0001", 1_790_000_000,
            "{\"type\":\"run.succeeded\",\"data\":{\"run\":\"r-1\",\"note\":\"café\"}}",
            "v1,KyookAlpdEQv3KXwdf9ULqLIadAP/TZRq+Eg69vQwSE="),
    ]

    @Test(arguments: vectors.indices)
    func knownAnswers(index: Int) throws {
        let vector = Self.vectors[index]
        let secret = try WebhookSecret(parsing: vector.secret)
        #expect(StandardWebhooks.signature(secret: secret, id: vector.id, timestamp: vector.timestamp, body: Data(vector.body.utf8)) == vector.signature)
        let headers = StandardWebhooks.headers(secret: secret, id: vector.id, timestamp: vector.timestamp, body: Data(vector.body.utf8))
        #expect(headers.map(\.name) == ["webhook-id", "webhook-timestamp", "webhook-signature"])
        #expect(headers.map(\.value) == [vector.id, String(vector.timestamp), vector.signature])
        try StandardWebhooks.verify(secret: secret, body: Data(vector.body.utf8), now: vector.timestamp + 10) { name in
            headers.first { $0.name == name }?.value
        }
    }

    static let secret = WebhookSecret.generate()
    static let body = Data("{\"type\":\"agent.offline\"}".utf8)
    static let sent: Int64 = 1_800_000_000

    static func verify(
        body: Data = body, now: Int64 = sent, id: String? = "msg_1", timestamp: String? = String(sent), signature: String? = nil,
        secret: WebhookSecret = secret
    ) throws(WebhookError) {
        let real = StandardWebhooks.signature(secret: Self.secret, id: "msg_1", timestamp: sent, body: Self.body)
        let headers = ["webhook-id": id, "webhook-timestamp": timestamp, "webhook-signature": signature ?? real]
        try StandardWebhooks.verify(secret: secret, body: body, now: now) { headers[$0] ?? nil }
    }

    @Test func verification() throws {
        let real = StandardWebhooks.signature(secret: Self.secret, id: "msg_1", timestamp: Self.sent, body: Self.body)
        try Self.verify()
        try Self.verify(now: Self.sent + 300)
        try Self.verify(now: Self.sent - 300)
        // Several signatures (a secret rotation), other versions ignored.
        try Self.verify(signature: "v1,AAAA v1a,bm90IGEgc2ln \(real)")
        try Self.verify(signature: "\(real) v1,AAAA")
        #expect(throws: WebhookError.noMatchingSignature) { try Self.verify(body: Data("{\"type\":\"agent.online\"}".utf8)) }
        #expect(throws: WebhookError.noMatchingSignature) { try Self.verify(secret: .generate()) }
        #expect(throws: WebhookError.noMatchingSignature) { try Self.verify(id: "msg_2") }
        #expect(throws: WebhookError.noMatchingSignature) { try Self.verify(signature: "v2," + real.dropFirst(3)) }
        #expect(throws: WebhookError.noMatchingSignature) { try Self.verify(signature: "v1,not base64!") }
        #expect(throws: WebhookError.timestampOutOfTolerance(timestamp: Self.sent, now: Self.sent + 301)) { try Self.verify(now: Self.sent + 301) }
        #expect(throws: WebhookError.timestampOutOfTolerance(timestamp: Self.sent, now: Self.sent - 301)) { try Self.verify(now: Self.sent - 301) }
        #expect(throws: WebhookError.missingHeader("webhook-id")) { try Self.verify(id: nil) }
        #expect(throws: WebhookError.missingHeader("webhook-timestamp")) { try Self.verify(timestamp: nil) }
        for bad in ["", "-5", "1.5", "12a", "99999999999999999999"] {
            #expect(throws: WebhookError.invalidTimestamp(bad)) { try Self.verify(timestamp: bad) }
        }
    }

    @Test func secrets() throws {
        let generated = WebhookSecret.generate()
        #expect(generated.bytes.count == 32)
        #expect(generated.text.hasPrefix("whsec_"))
        #expect(try WebhookSecret(parsing: generated.text) == generated)
        #expect(generated.description == "whsec_…")
        #expect(WebhookSecret.generate() != generated)
        for count in [24, 64] {
            #expect(try WebhookSecret(parsing: "whsec_" + Data(count: count).base64EncodedString()).bytes.count == count)
        }
        for count in [0, 23, 65] {
            #expect(throws: WebhookError.self) { try WebhookSecret(parsing: "whsec_" + Data(count: count).base64EncodedString()) }
        }
        #expect(throws: WebhookError.invalidSecret("a webhook secret starts with \"whsec_\"")) {
            try WebhookSecret(parsing: Data(count: 32).base64EncodedString())
        }
        #expect(throws: WebhookError.invalidSecret("the part after \"whsec_\" is not base64")) { try WebhookSecret(parsing: "whsec_***") }
    }

    @Test func messageIDs() {
        let id = StandardWebhooks.newMessageID()
        #expect(id.hasPrefix("msg_") && id.count == 4 + 22)
        #expect(id != StandardWebhooks.newMessageID())
    }
}

@Suite struct WebhookRetryTests {
    static let second: Int64 = 1_000
    static let hour: Int64 = 3_600_000

    @Test func delaysGrowExponentiallyUpToTheCap() {
        let policy = WebhookRetryPolicy()
        let seconds: [Int64] = [5, 20, 80, 320, 1_280, 5_120, 7_200, 7_200, 7_200]
        #expect((1...9).map { policy.nominalDelay(afterAttempt: $0) } == seconds.map { $0 * Self.second })
        #expect(policy.nominalDelay(afterAttempt: 10_000) == 2 * Self.hour)
        #expect(policy.delayBounds(afterAttempt: 1) == 4_000...6_000)
        #expect(policy.delayBounds(afterAttempt: 20) == 5_760_000...8_640_000)
    }

    /// Whatever the jitter, attempts continue until one is made at least 24 h after the first, and then stop.
    @Test(arguments: [0.0, 0.5, 0.999_999])
    func attemptsLastAtLeastADay(unit: Double) {
        let policy = WebhookRetryPolicy()
        let first: Int64 = 1_800_000_000_000
        var attempts = [first]
        while let next = policy.nextAttempt(afterAttempt: attempts.count, firstAttemptAt: first, lastAttemptAt: attempts[attempts.count - 1], unit: unit) {
            let previous = attempts[attempts.count - 1]
            #expect(policy.delayBounds(afterAttempt: attempts.count).contains(next - previous))
            attempts.append(next)
            guard attempts.count < 100 else { break }
        }
        let last = attempts[attempts.count - 1]
        #expect(last - first >= 24 * Self.hour)
        #expect(attempts[attempts.count - 2] - first < 24 * Self.hour)
        #expect((12...30).contains(attempts.count), "\(attempts.count) attempts")
    }

    @Test func randomJitterStaysWithinBounds() {
        let policy = WebhookRetryPolicy()
        var generator = SplitMix64(seed: 7)
        var delays: Set<Int64> = []
        for _ in 0..<500 {
            guard let next = policy.nextAttempt(afterAttempt: 3, firstAttemptAt: 0, lastAttemptAt: 100_000, using: &generator) else {
                Issue.record("gave up early")
                return
            }
            #expect(policy.delayBounds(afterAttempt: 3).contains(next - 100_000))
            delays.insert(next - 100_000)
        }
        #expect(delays.count > 100)  // spread, not one value
        #expect(policy.nextAttempt(afterAttempt: 20, firstAttemptAt: 0, lastAttemptAt: 24 * Self.hour, using: &generator) == nil)
    }
}
