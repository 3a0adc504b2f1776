import Foundation
import KlevrAPI
import KlevrTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The agent's peer port faces the zone's network: a client that opens a connection and sends nothing
/// (slowloris), or a request head that never ends, is disconnected; the port keeps answering others.
@Suite(.serialized, .timeLimit(.minutes(5)), .waitsForProcesses)
struct PeerPortSystemTests {
    enum Outcome: Sendable, Equatable {
        case refused
        case closed(after: Double)
        case stillOpen
        case failed(Int32)
    }

    /// Connects to the loopback port, sends `bytes`, and says how long until the server closed the
    /// connection. Blocking, on a thread of its own.
    static func secondsUntilClosed(port: Int, sending bytes: String, limit: Double) async -> Outcome {
        await onOwnThread {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return .failed(errno) }
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            let connected = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            guard connected else { return .refused }
            if !bytes.isEmpty { _ = bytes.withCString { send(fd, $0, strlen($0), 0) } }
            var timeout = timeval(tv_sec: Int(limit), tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let started = Date()
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = recv(fd, &buffer, buffer.count, 0)
                if count == 0 || (count < 0 && errno == ECONNRESET) { return .closed(after: Date().timeIntervalSince(started)) }
                if count < 0 && errno == EINTR { continue }
                if count < 0 { return errno == EAGAIN || errno == EWOULDBLOCK ? .stillOpen : .failed(errno) }
            }
        }
    }

    @Test func slowAndIdleClientsOfThePeerPortAreDisconnected() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "local")
        try await cluster.startAgent("a", zone: "local")
        let port = try #require(cluster.peerPorts["a"])
        // The peer server listens once the agent has its identity: wait until it accepts.
        try await eventually(60, "the peer port accepts connections") {
            await Self.secondsUntilClosed(port: port, sending: "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", limit: 10) != .refused
        }
        let limit = 90 * TestTime.scale
        // Nothing sent: closed after the head limit (10 s), well before the test's limit.
        async let idle = Self.secondsUntilClosed(port: port, sending: "", limit: limit)
        // A request head that never ends.
        async let partial = Self.secondsUntilClosed(port: port, sending: "POST /peer/v1/whois HTTP/1.1\r\nHost: x\r\n", limit: limit)
        let (idleOutcome, partialOutcome) = await (idle, partial)
        guard case .closed = idleOutcome else {
            Issue.record("an idle connection to the peer port: \(idleOutcome) (limit \(limit) s)")
            return
        }
        guard case .closed = partialOutcome else {
            Issue.record("a connection with an unfinished request head: \(partialOutcome) (limit \(limit) s)")
            return
        }
        // The agent still serves its zone.
        try await eventually(30, "the agent is online") { try await cluster.agents(zone: "local").first?.status == .online }
    }
}
