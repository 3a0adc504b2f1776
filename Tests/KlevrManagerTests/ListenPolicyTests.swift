import KlevrManager
import Testing

/// Plain HTTP only on loopback: every other address needs TLS or `--insecure-http`.
@Suite struct ListenPolicyTests {
    @Test(arguments: [
        ("127.0.0.1", true), ("127.0.0.53", true), ("127.255.255.254", true), ("localhost", true), ("LOCALHOST", true),
        ("::1", true), ("[::1]", true), ("0:0:0:0:0:0:0:1", true),
        ("0.0.0.0", false), ("::", false), ("[::]", false), ("10.0.0.5", false), ("128.0.0.1", false), ("126.255.255.255", false),
        ("::2", false), ("::ffff:127.0.0.1", false), ("192.168.1.10", false), ("example.com", false), ("localhost.example.com", false),
        ("127.0.0.1.example.com", false), ("", false),
    ])
    func loopbackHosts(host: String, loopback: Bool) {
        #expect(ListenPolicy.isLoopback(host) == loopback, "\(host)")
    }

    @Test func plainHTTPBeyondLoopbackIsRefusedUnlessTLSOrInsecureHTTP() throws {
        #expect(throws: ListenPolicy.Refused.self) { try ListenPolicy.check(host: "0.0.0.0", port: 8090, tls: false, insecureHTTP: false) }
        #expect(throws: ListenPolicy.Refused.self) { try ListenPolicy.check(host: "10.1.2.3", port: 8090, tls: false, insecureHTTP: false) }
        try ListenPolicy.check(host: "0.0.0.0", port: 8090, tls: true, insecureHTTP: false)
        try ListenPolicy.check(host: "0.0.0.0", port: 8090, tls: false, insecureHTTP: true)
        try ListenPolicy.check(host: "127.0.0.1", port: 8090, tls: false, insecureHTTP: false)
        let error = try #require(throws: ListenPolicy.Refused.self) {
            try ListenPolicy.check(host: "0.0.0.0", port: 8443, tls: false, insecureHTTP: false)
        }
        #expect(error.description.contains("0.0.0.0:8443"))
        #expect(error.description.contains("--tls-cert") && error.description.contains("--insecure-http"))
    }
}
