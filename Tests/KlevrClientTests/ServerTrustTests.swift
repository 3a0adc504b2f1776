import Foundation
import KlevrAPI
import KlevrClient
import Testing

/// Parsing of `--ca` and `--ca-pin`, the pin format, and how the choice is stored.
@Suite struct ServerTrustTests {
    static let pin = "sha256:" + String(repeating: "0f", count: 32)

    @Test func pinsParseOnlyInTheirOneFormat() throws {
        #expect(CertificatePin(Self.pin)?.value == Self.pin)
        #expect(CertificatePin(Self.pin.uppercased().replacingOccurrences(of: "SHA256", with: "sha256"))?.value == Self.pin)
        for bad in ["", "sha256:", "sha256:0f", Self.pin + "0", "sha1:" + String(repeating: "0f", count: 32), "sha256:" + String(repeating: "zz", count: 32),
                    String(repeating: "0f", count: 32)] {
            #expect(CertificatePin(bad) == nil, "\(bad)")
        }
        // The pin is SHA-256 over the given bytes, in lowercase hex.
        #expect(CertificatePin(subjectPublicKeyInfo: Data("abc".utf8)).value
            == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func optionsAreCheckedBeforeUse() throws {
        #expect(try ServerTrust.fromOptions(caFile: nil, pin: nil) == nil)
        #expect(try ServerTrust.fromOptions(caFile: nil, pin: Self.pin) == .pinned(try #require(CertificatePin(Self.pin)), certificate: nil))
        #expect(throws: ServerTrust.InvalidOptions.self) { try ServerTrust.fromOptions(caFile: nil, pin: "sha256:abc") }
        #expect(throws: ServerTrust.InvalidOptions.self) { try ServerTrust.fromOptions(caFile: "/nonexistent/ca.pem", pin: nil) }
        #expect(throws: ServerTrust.InvalidOptions.self) { try ServerTrust.fromOptions(caFile: "/etc/hostname", pin: Self.pin) }
        let notPEM = FileManager.default.temporaryDirectory.appendingPathComponent("klevr-not-a-ca-\(UUID().uuidString).pem").path
        FileManager.default.createFile(atPath: notPEM, contents: Data("not a certificate\n".utf8))
        defer { try? FileManager.default.removeItem(atPath: notPEM) }
        #expect(throws: ServerTrust.InvalidOptions.self) { try ServerTrust.fromOptions(caFile: notPEM, pin: nil) }
    }

    @Test func aPinWithoutItsFetchedCertificateTrustsNothing() throws {
        let trust = try #require(try ServerTrust.fromOptions(caFile: nil, pin: Self.pin))
        #expect(throws: ServerTrust.InvalidOptions.self) { _ = try trust.tlsConfiguration() }
    }

    @Test func theChoiceRoundTripsThroughJSON() throws {
        let pin = try #require(CertificatePin(Self.pin))
        for trust in [ServerTrust.system, .certificateAuthority(pem: "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"),
                      .pinned(pin, certificate: nil), .pinned(pin, certificate: [1, 2, 3])] {
            let data = try JSONEncoder().encode(trust)
            #expect(try JSONDecoder().decode(ServerTrust.self, from: data) == trust)
        }
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(ServerTrust.self, from: Data(#"{"kind":"pin","pin":"sha256:12"}"#.utf8))
        }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(ServerTrust.self, from: Data(#"{"kind":"whatever"}"#.utf8)) }
    }
}
