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

    /// Writes the agent's own file at `path` (its temporary twin is `path.tmp`).
    static func write(_ data: Data, to path: String, mode: mode_t = 0o600) throws {
        try write(data, to: path, mode: mode, temporary: path + ".tmp", flags: O_WRONLY | O_CREAT | O_TRUNC, removeOnFailure: false)
    }

    /// Writes a file at a path chosen by someone else (`file.put`): the temporary file gets a fresh name next
    /// to the target, created exclusively without following links (never an existing file or a link planted
    /// there), and is removed when the write fails. Readers see the old file or the new one, never a part.
    static func writeFresh(_ data: Data, to path: String, mode: mode_t) throws {
        try write(
            data, to: path, mode: mode, temporary: path + ".klevr-\(UUID().uuidString.prefix(8)).tmp",
            flags: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, removeOnFailure: true)
    }

    private static func write(_ data: Data, to path: String, mode: mode_t, temporary: String, flags: Int32, removeOnFailure: Bool) throws {
        let fd = open(temporary, flags | O_CLOEXEC, mode_t(0o600))
        guard fd >= 0 else { throw Failure.io("open \(temporary)", errno) }
        // A temporary file left by a crash keeps its old mode through O_TRUNC: set the mode explicitly.
        guard fchmod(fd, mode) == 0 else {
            let code = errno
            close(fd)
            if removeOnFailure { unlink(temporary) }
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
        if failure == nil && rename(temporary, path) != 0 { failure = .io("rename \(temporary) to \(path)", errno) }
        if let failure {
            if removeOnFailure { unlink(temporary) }
            throw failure
        }
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
