import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writing files so that they survive a crash or power loss: write to a temporary name, fsync,
/// rename over the target, fsync the directory.
enum DurableFile {
    enum Failure: Error, CustomStringConvertible {
        case io(String, Int32)
        var description: String {
            switch self {
            case .io(let what, let code): "\(what): \(String(cString: strerror(code)))"
            }
        }
    }

    static func write(_ data: Data, to path: String, mode: mode_t = 0o600) throws {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, mode)
        guard fd >= 0 else { throw Failure.io("open \(temporary)", errno) }
        // A temporary file left by a crash keeps its old mode through O_TRUNC: set the mode explicitly.
        guard fchmod(fd, mode) == 0 else {
            let code = errno
            close(fd)
            throw Failure.io("chmod \(temporary)", code)
        }
        var failure: Failure?
        data.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var offset = 0
            while offset < raw.count {
                let written = systemWrite(fd, base + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = .io("write \(temporary)", errno)
                    return
                }
                offset += written
            }
        }
        if failure == nil && fsync(fd) != 0 { failure = .io("fsync \(temporary)", errno) }
        close(fd)
        if let failure { throw failure }
        guard rename(temporary, path) == 0 else { throw Failure.io("rename \(temporary)", errno) }
        syncDirectory(of: path)
    }

    private static func systemWrite(_ fd: Int32, _ pointer: UnsafeRawPointer, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.write(fd, pointer, count)
        #elseif canImport(Musl)
        Musl.write(fd, pointer, count)
        #else
        Darwin.write(fd, pointer, count)
        #endif
    }

    static func syncDirectory(of path: String) {
        let directory = (path as NSString).deletingLastPathComponent
        let fd = open(directory, O_RDONLY)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    /// Creates a directory (and parents) with mode 0700.
    static func makeDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        chmod(path, 0o700)
    }
}
