#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Decides whether the manager may listen on an address without TLS.
///
/// Only loopback is private enough for plain HTTP: `127.0.0.0/8`, `::1` and `localhost`. Any other
/// host, the wildcard `0.0.0.0` and `::` included, is beyond loopback and needs `--tls-cert` and
/// `--tls-key`, or `--insecure-http` to say that a TLS proxy terminates HTTPS in front of the manager.
public enum ListenPolicy {
    /// Plain HTTP was asked for beyond loopback without `--insecure-http`.
    public struct Refused: Error, CustomStringConvertible, Sendable {
        public var host: String
        public var port: Int
        public var description: String {
            "refusing to serve plain HTTP on \(host):\(port), which is beyond loopback: give --tls-cert FILE and --tls-key FILE, "
                + "or --insecure-http when a TLS proxy in front of the manager terminates HTTPS"
        }
    }

    /// Whether `host` names only this machine's loopback interface.
    public static func isLoopback(_ host: String) -> Bool {
        var text = host
        if text.hasPrefix("[") && text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        if text.lowercased() == "localhost" { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            // s_addr is in network byte order: its first byte in memory is the first octet.
            return withUnsafeBytes(of: &v4) { $0.first == 127 }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { bytes in bytes.prefix(15).allSatisfy { $0 == 0 } && bytes.last == 1 }
        }
        return false
    }

    /// Throws ``Refused`` for plain HTTP beyond loopback unless `insecureHTTP` allows it.
    public static func check(host: String, port: Int, tls: Bool, insecureHTTP: Bool) throws(Refused) {
        if tls || insecureHTTP || isLoopback(host) { return }
        throw Refused(host: host, port: port)
    }
}
