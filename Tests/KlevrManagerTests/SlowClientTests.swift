import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KlevrCore
@testable import KlevrManager
import KlevrServerGuard
import KlevrStore
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Slow clients cannot hold the server: connections whose request head does not arrive in time are
/// closed, the number of open connections is capped, and `/healthz` answers meanwhile. Real sockets on
/// loopback.
@Suite struct SlowClientTests {
    static func manager(headerTimeout: Double, maxConnections: Int) async throws -> Manager {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("klevr-slow-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var config = ManagerConfig(
            host: "127.0.0.1", port: 0, database: .sqlite(path: directory.appendingPathComponent("klevr.db").path),
            adminPassword: TestManager.adminPassword, bcryptCost: 4)
        config.headerTimeoutSeconds = headerTimeout
        config.bodyTimeoutSeconds = headerTimeout
        config.maxConnections = maxConnections
        return try await Manager.bootstrap(config: config, logger: LogCapture().logger()).0
    }

    /// Runs the manager's application as `klevr manager` does (HummingbirdTesting's live mode drops the
    /// connection cap) and calls `body` with its port.
    static func running(_ manager: Manager, _ body: @Sendable (Int) async throws -> Void) async throws {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = manager.application(onServerRunning: { port in continuation.yield(port) })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService(gracefulShutdownSignals: []) }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw CancellationError() }
            do {
                try await body(port)
            } catch {
                group.cancelAll()
                throw error
            }
            group.cancelAll()
        }
        await manager.store.database.close()
    }

    /// A plain GET over a fresh loopback connection; the status line's code.
    static func get(_ path: String, port: Int) async throws -> Int {
        let socket = try LoopbackSocket(port: port)
        defer { socket.close() }
        socket.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        let deadline = ContinuousClock.now + .seconds(30)
        var answer = ""
        while ContinuousClock.now < deadline {
            answer += socket.receive()
            if let line = answer.split(separator: "\r\n").first, line.hasPrefix("HTTP/1.1 "), let code = Int(line.dropFirst(9).prefix(3)) {
                return code
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return 0
    }

    /// Waits until the server closed every socket (bounded); returns those still open.
    static func waitUntilClosed(_ sockets: [LoopbackSocket], dribble: Bool, seconds: Int) async throws -> [LoopbackSocket] {
        let deadline = ContinuousClock.now + .seconds(seconds)
        var open = sockets
        while !open.isEmpty && ContinuousClock.now < deadline {
            if dribble { for socket in open { socket.send("x") } }
            open = open.filter { !$0.isClosedByPeer() }
            if !open.isEmpty { try await Task.sleep(for: .milliseconds(250)) }
        }
        return open
    }

    @Test func dribblingClientsAreClosedAndHealthzKeepsAnswering() async throws {
        let manager = try await Self.manager(headerTimeout: 4, maxConnections: 400)
        try await Self.running(manager) { port in
            var sockets: [LoopbackSocket] = []
            defer { for socket in sockets { socket.close() } }
            for _ in 0..<200 {
                let socket = try LoopbackSocket(port: port)
                // A valid request head that never ends: one more header byte now and then.
                socket.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                sockets.append(socket)
            }
            // While 200 connections hold an unfinished request head, the server answers others.
            #expect(try await Self.get("/healthz", port: port) == 200)
            // Every one was accepted: open, or (on a loaded machine, where opening 200 takes a while) already
            // closed by the 4 s header timeout.
            #expect(manager.connections.open + manager.connections.timedOut >= 200)
            let open = try await Self.waitUntilClosed(sockets, dribble: true, seconds: 60)
            #expect(open.isEmpty, "\(open.count) slow connections were still open after 60 s")
            #expect(manager.connections.timedOut >= 200)
            #expect(try await Self.get("/healthz", port: port) == 200)
        }
    }

    @Test func connectionsAreCapped() async throws {
        let manager = try await Self.manager(headerTimeout: 1, maxConnections: 10)
        try await Self.running(manager) { port in
            var sockets: [LoopbackSocket] = []
            defer { for socket in sockets { socket.close() } }
            for _ in 0..<30 { sockets.append(try LoopbackSocket(port: port)) }
            // The idle ones are closed in turn (those past the cap wait in the backlog meanwhile), and the
            // server never held more than its cap.
            let open = try await Self.waitUntilClosed(sockets, dribble: false, seconds: 60)
            #expect(open.isEmpty)
            // The server stops accepting at the cap; connections already taken from the listen socket in the
            // same read (NIO reads at most 4 at a time) still come in.
            #expect(manager.connections.peak <= 10 + 4)
            #expect(manager.connections.peak >= 5)
            #expect(manager.connections.timedOut >= 30)
            #expect(try await Self.get("/healthz", port: port) == 200)
        }
    }

    @Test func aSlowBodyIsClosedButASlowAnswerIsNot() async throws {
        let manager = try await Self.manager(headerTimeout: 1, maxConnections: 100)
        // The manager's HTTP limits on a router with a route that takes longer than them to answer, as a
        // long-poll does: the server's own time is not the client's delay.
        let router = Router()
        router.get("/slow") { _, _ in
            try await Task.sleep(for: .milliseconds(2_500))
            return "done"
        }
        let app = Application(router: router, server: .http1(configuration: manager.httpConfiguration()), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let answer = try await client.execute(uri: "/slow", method: .get) { ($0.status, String(buffer: $0.body)) }
            #expect(answer.0 == .ok)
            #expect(answer.1 == "done")
            // A body announced and never finished is cut off.
            let port = try #require(client.port)
            let socket = try LoopbackSocket(port: port)
            defer { socket.close() }
            socket.send("POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            let deadline = ContinuousClock.now + .seconds(30)
            var closed = false
            while !closed && ContinuousClock.now < deadline {
                closed = socket.isClosedByPeer()
                if !closed { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(closed)
        }
        await manager.store.database.close()
    }
}

/// A blocking TCP socket to 127.0.0.1, for tests that need to misbehave below HTTP.
final class LoopbackSocket: @unchecked Sendable {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            Glibc.close(fd)
            throw POSIXError(.ECONNREFUSED)
        }
    }

    func send(_ text: String) {
        _ = text.utf8CString.withUnsafeBufferPointer { Glibc.send(fd, $0.baseAddress, text.utf8.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Whether the server closed the connection (a read returns end of file or a reset; it does not wait).
    func isClosedByPeer() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        if count == 0 { return true }
        if count < 0 { return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR }
        return false
    }

    /// What the server sent so far (does not wait).
    func receive() -> String {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        return count > 0 ? String(decoding: buffer.prefix(count), as: UTF8.self) : ""
    }

    func close() { Glibc.close(fd) }
}
