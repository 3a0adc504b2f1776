import Crypto
import Foundation
import KlevrAPI
import KlevrAgent
import KlevrCore
import Testing

/// The pieces of the zone channel that hold without a network: stamps, the nonce cache, sealing, the
/// manager clock estimate, and input that must not crash anything.
@Suite struct ZoneCryptoTests {
    let key = Curve25519.Signing.PrivateKey()
    let sender = Secrets.newID()
    let zone = Secrets.newID()

    @Test func aStampVerifiesOnlyForItsMethodPathAndKey() throws {
        let body = Data("{}".utf8)
        let stamp = try PeerStamp.sign(method: "POST", path: "/peer/v1/sync", body: body, sender: sender, zone: zone, time: 1_000, key: key)
        let parsed = try #require(PeerStamp(header: stamp.headerValue))
        #expect(parsed == stamp)
        #expect(parsed.verifies(method: "POST", path: "/peer/v1/sync", key: key.publicKey))
        #expect(!parsed.verifies(method: "GET", path: "/peer/v1/sync", key: key.publicKey))
        #expect(!parsed.verifies(method: "POST", path: "/peer/v1/whois", key: key.publicKey))
        #expect(!parsed.verifies(method: "POST", path: "/peer/v1/sync", key: Curve25519.Signing.PrivateKey().publicKey))
        #expect(parsed.digest == PeerStamp.digest(of: body))
        #expect(parsed.digest != PeerStamp.digest(of: Data("{ }".utf8)))
        // Malformed headers are nil, whatever they hold.
        for bad in ["", "v1.a.b.1.n.d.s", "v2.\(sender).\(zone).notanumber.\(String(repeating: "n", count: 22)).\(String(repeating: "d", count: 43)).s",
            String(repeating: "x", count: 10_000), "v2.\(sender).\(zone).-9223372036854775808.\(String(repeating: "n", count: 22)).\(String(repeating: "d", count: 43)).s"]
        {
            if let stamp = PeerStamp(header: bad) {
                #expect(!stamp.verifies(method: "POST", path: "/peer/v1/sync", key: key.publicKey))
            }
        }
    }

    @Test func answersAreBoundToTheRequestNonce() throws {
        let body = Data("{\"ok\":true}".utf8)
        let header = try PeerStamp.signAnswer(requestNonce: "nonce-1", status: 200, body: body, sender: sender, key: key)
        #expect(PeerStamp.verifyAnswer(header: header, requestNonce: "nonce-1", status: 200, body: body, keyOf: { _ in key.publicKey }) == sender)
        #expect(PeerStamp.verifyAnswer(header: header, requestNonce: "nonce-2", status: 200, body: body, keyOf: { _ in key.publicKey }) == nil)
        #expect(PeerStamp.verifyAnswer(header: header, requestNonce: "nonce-1", status: 409, body: body, keyOf: { _ in key.publicKey }) == nil)
        #expect(PeerStamp.verifyAnswer(header: header, requestNonce: "nonce-1", status: 200, body: Data("{}".utf8), keyOf: { _ in key.publicKey }) == nil)
        #expect(PeerStamp.verifyAnswer(header: header, requestNonce: "nonce-1", status: 200, body: body, keyOf: { _ in nil }) == nil)
    }

    @Test func theNonceCacheRefusesReplaysStaleAndFutureTimesAndExtremeValues() {
        var cache = NonceCache(capacity: 100, window: 60_000, ahead: 10_000)
        let now: Int64 = 1_000_000
        let r1 = cache.admit("n1", sender: "a", time: now, now: now)
        #expect(r1)
        let r2 = cache.admit("n1", sender: "a", time: now, now: now)
        #expect(!r2, "a replay")
        let r3 = cache.admit("n1", sender: "b", time: now, now: now)
        #expect(r3, "another sender's nonce is its own")
        let r4 = cache.admit("n2", sender: "a", time: now - 61_000, now: now)
        #expect(!r4, "too old")
        let r5 = cache.admit("n3", sender: "a", time: now + 11_000, now: now)
        #expect(!r5, "too far ahead")
        let r6 = cache.admit("n4", sender: "a", time: .min, now: now)
        #expect(!r6)
        let r7 = cache.admit("n5", sender: "a", time: .max, now: now)
        #expect(!r7)
        let r8 = cache.admit("n6", sender: "a", time: 0, now: .max)
        #expect(!r8)
    }

    @Test func aMemberFloodingTheNonceCacheRaisesOnlyItsOwnFloor() {
        var cache = NonceCache(capacity: 50, window: 60_000, ahead: 10_000)
        let now: Int64 = 1_000_000
        let r9 = cache.admit("honest-0", sender: "honest", time: now - 5_000, now: now)
        #expect(r9)
        for index in 0..<500 {
            _ = cache.admit("flood-\(index)", sender: "flooder", time: now + 9_000, now: now)
        }
        #expect(cache.count <= 50)
        // The honest member's next request (a later time) still gets through; the flooder's old time does not.
        let r10 = cache.admit("honest-1", sender: "honest", time: now, now: now)
        #expect(r10)
        let r11 = cache.admit("honest-0", sender: "honest", time: now - 5_000, now: now)
        #expect(!r11, "its evicted nonce is not accepted again")
        let r12 = cache.admit("flood-late", sender: "flooder", time: now + 9_000, now: now)
        #expect(!r12)
    }

    @Test func sealedBoxesOpenOnlyWithTheRightKeyAndContext() throws {
        let recipient = Curve25519.KeyAgreement.PrivateKey()
        let box = try Sealing.seal(Data("secret".utf8), to: recipient.publicKey, context: "run-params:1")
        #expect(try Sealing.open(box, with: recipient, context: "run-params:1") == Data("secret".utf8))
        #expect(throws: Sealing.OpenFailed.self) { try Sealing.open(box, with: recipient, context: "run-params:2") }
        #expect(throws: Sealing.OpenFailed.self) { try Sealing.open(box, with: Curve25519.KeyAgreement.PrivateKey(), context: "run-params:1") }
        var tampered = box
        tampered.ct = Data(repeating: 0, count: 40).base64EncodedString()
        #expect(throws: Sealing.OpenFailed.self) { try Sealing.open(tampered, with: recipient, context: "run-params:1") }
        #expect(throws: Sealing.OpenFailed.self) { try Sealing.open(SealedBox(epk: "!", ct: "!"), with: recipient, context: "x") }
    }

    @Test func theManagerClockIgnoresAbsurdTimesAndPeersMoveItOnlyALittle() {
        let clock = ManagerClock()
        clock.observe(.max)
        clock.observe(.min)
        #expect(!clock.isKnown)
        let base = Clock.nowMillis() + 7_200_000
        clock.observe(base)
        #expect(abs(clock.now() - base) < 5_000)
        clock.observe(base + 3_600_000, fromPeer: true)
        #expect(abs(clock.now() - base) < 5_000, "a peer cannot move a known estimate by an hour")
        clock.observe(base + 60_000, fromPeer: true)
        #expect(abs(clock.now() - (base + 60_000)) < 5_000, "but can correct it by a minute")
        #expect(abs((clock.skewMillis ?? 0) + 7_260_000) < 5_000)
    }

    @Test func textIsCutAtCharacterBoundaries() {
        #expect("héllo".truncatedUTF8(to: 2) == "h")
        #expect("héllo".truncatedUTF8(to: 3) == "hé")
        #expect("€€".truncatedUTF8(to: 4) == "€")
        #expect("abc".truncatedUTF8(to: 10) == "abc")
        #expect("👩‍👩‍👧".truncatedUTF8(to: 5) == "")
    }

    @Test func peerAddressesAreHostAndPortOnly() {
        for good in ["127.0.0.1:18800", "agent-1.dc1.example:443", "[::1]:18800", "[fe80::1]:1"] {
            #expect(Validation.isValidPeerAddress(good), "\(good)")
        }
        for bad in ["", "host", "host:0", "host:70000", "10.0.0.5:80/admin?", "user@host:1", "host:1?x", ":1", "[]:1", "h ost:1", "[::1:1"] {
            #expect(!Validation.isValidPeerAddress(bad), "\(bad)")
        }
    }
}
