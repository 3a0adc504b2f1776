#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Free TCP ports on 127.0.0.1, for tools that start agents on loopback (benchmarks, system tests).
public enum LoopbackPort {
    public struct Unavailable: Error, CustomStringConvertible {
        public var description: String { "no free port on 127.0.0.1" }
    }

    /// Whether `port` on 127.0.0.1 can be bound right now (it is bound and released at once).
    public static func isFree(_ port: Int) -> Bool {
        guard (1...65535).contains(port) else { return false }
        return (try? bound(port)) != nil
    }

    /// A port the system reports free right now (bind to port 0, read it back, release it).
    public static func free() throws -> Int {
        try bound(0)
    }

    /// Binds `port` (0: any) on 127.0.0.1, releases it, and returns the port that was bound.
    static func bound(_ port: Int) throws -> Int {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw Unavailable() }
        defer { close(fd) }
        // As a server binds: a port whose last connection is in TIME_WAIT counts as free.
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw Unavailable() }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
