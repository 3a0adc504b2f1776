import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Files that only their owner may read (mode 0600): databases, keys, passwords. The mode is set by the
/// code, never left to the umask or to the mode of a directory that existed before.
public enum PrivateFile {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Creates `path` empty with mode 0600 if it does not exist, and sets an existing file to 0600.
    public static func prepare(_ path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure(description: "cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fchmod(fd, 0o600) == 0 else { throw Failure(description: "cannot set the mode of \(path): \(String(cString: strerror(errno)))") }
    }

    /// Sets `path` to 0600 if it exists (a missing file is not an error).
    public static func restrict(_ path: String) throws {
        guard chmod(path, 0o600) == 0 || errno == ENOENT else {
            throw Failure(description: "cannot set the mode of \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Writes `data` to a new file at `path`, created with mode 0600 (it must not exist yet: nothing is
    /// overwritten, and no moment passes in which the file has a wider mode).
    public static func create(_ path: String, contents data: Data) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure(description: "cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fchmod(fd, 0o600) == 0 else { throw Failure(description: "cannot set the mode of \(path): \(String(cString: strerror(errno)))") }
        let written = data.withUnsafeBytes { buffer in
            guard let base = buffer.baseAddress else { return 0 }
            return write(fd, base, buffer.count)
        }
        guard written == data.count, fsync(fd) == 0 else { throw Failure(description: "cannot write \(path)") }
    }

    /// The permission bits of `path` (for tests and checks).
    public static func mode(_ path: String) -> Int? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Int(info.st_mode & 0o777)
    }
}
