import Foundation
import KlevrCore

// `struct stat` is seen through Foundation's CoreFoundation in some builds of this module (release, and
// some incremental debug ones): without this import its members are a MemberImportVisibility error.
#if canImport(CoreFoundation)
import CoreFoundation
#endif
#if canImport(Glibc)
import Glibc
private typealias FileStatus = Glibc.stat
#elseif canImport(Musl)
import Musl
private typealias FileStatus = Musl.stat
#elseif canImport(Darwin)
import Darwin
private typealias FileStatus = Darwin.stat
#endif

/// The directory runs execute in (`--work-dir`): `<workDir>/<run id>/`, one per run, removed when the
/// run ends.
///
/// It lies outside the agent's state directory, so that a script walking up from its working directory
/// finds neither the agent's key and credential nor its outbox; and it holds nothing but run
/// directories, so that one run finds no other run's parameters. (A script that runs as the agent's own
/// user can still open the state directory by its absolute path: `--run-as` is the boundary.)
struct WorkDirectory: Sendable {
    let path: String
    /// The account the steps run as, when it is not the agent's: run directories are handed to it.
    let owner: ScriptUser?

    /// Why the work directory or a run directory cannot be used.
    enum Failure: Error, CustomStringConvertible {
        case notADirectory(String)
        case ownedByAnother(String, uid_t)
        case foreignEntry(String)
        case unsafeName(String)
        case io(String, Int32)

        var description: String {
            switch self {
            case .notADirectory(let path): "the work directory \(path) is not a directory (or is a symbolic link)"
            case .ownedByAnother(let path, let uid): "the work directory \(path) belongs to uid \(uid), not to this agent"
            case .foreignEntry(let path):
                "the work directory holds \(path), which is not a run directory; give --work-dir an empty directory of its own"
            case .unsafeName(let name): "'\(name)' is not a run id"
            case .io(let what, let code): "\(what): \(String(cString: strerror(code)))"
            }
        }
    }

    /// Creates the work directory if needed, checks that it is this agent's own directory (not a link,
    /// not someone else's), sets its mode and removes run directories a crashed agent left behind.
    ///
    /// The mode is 0700; with another run-as user 0711, so that the user can reach its own run
    /// directory by name but cannot list the others.
    static func prepare(path: String, owner: ScriptUser?) throws(Failure) -> WorkDirectory {
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty {
            do {
                try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
            } catch {
                throw .io("create \(parent)", errno)
            }
        }
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw .io("create \(path)", errno) }
        var status = FileStatus()
        guard lstat(path, &status) == 0 else { throw .io("stat \(path)", errno) }
        guard status.st_mode & S_IFMT == S_IFDIR else { throw .notADirectory(path) }
        guard status.st_uid == geteuid() else { throw .ownedByAnother(path, status.st_uid) }
        guard chmod(path, owner == nil ? 0o700 : 0o711) == 0 else { throw .io("chmod \(path)", errno) }
        try removeStale(in: path)
        return WorkDirectory(path: path, owner: owner)
    }

    /// Removes the run directories in `path` (left by an agent that crashed during runs).
    /// - Throws: ``Failure/foreignEntry(_:)`` for anything that is not a run directory, which is left
    ///   alone: a mistyped `--work-dir` must not cost anyone their files.
    /// - Returns: how many run directories were removed.
    @discardableResult
    static func removeStale(in path: String) throws(Failure) -> Int {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            throw .io("list \(path)", errno)
        }
        for name in names {
            var status = FileStatus()
            guard Validation.isValidID(name), lstat(path + "/" + name, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
                throw .foreignEntry(path + "/" + name)
            }
        }
        for name in names { try removeTree(path + "/" + name) }
        return names.count
    }

    /// Creates `<workDir>/<run id>` (0700) with the parameters file in it, both handed to the run-as
    /// user. Returns the run directory's path.
    func createRunDirectory(runID: String, parameters: Data) throws(Failure) -> String {
        guard Validation.isValidID(runID) else { throw .unsafeName(runID) }
        let directory = path + "/" + runID
        if mkdir(directory, 0o700) != 0 {
            guard errno == EEXIST else { throw .io("create \(directory)", errno) }
            try Self.removeTree(directory)
            guard mkdir(directory, 0o700) == 0 else { throw .io("create \(directory)", errno) }
        }
        // Written while the directory is still the agent's, so the script's user cannot have planted a
        // link under the name.
        let file = directory + "/" + Self.parametersFileName
        let fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .io("create \(file)", errno) }
        defer { close(fd) }
        var failure: Failure?
        parameters.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var offset = 0
            while offset < raw.count {
                let written = write(fd, base + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = .io("write \(file)", errno)
                    return
                }
                offset += written
            }
        }
        if let failure { throw failure }
        if let owner {
            guard fchown(fd, owner.uid, owner.gid) == 0 else { throw .io("chown \(file)", errno) }
            guard chown(directory, owner.uid, owner.gid) == 0 else { throw .io("chown \(directory)", errno) }
        }
        return directory
    }

    /// The parameters file's name inside a run directory.
    static let parametersFileName = "params.json"

    /// Removes a run directory and everything in it.
    func removeRunDirectory(_ directory: String) throws(Failure) {
        try Self.removeTree(directory)
    }

    /// Removes a tree without following links. A script may have left directories without write or
    /// search permission; root removes them regardless, the agent's own user after giving itself
    /// access back.
    static func removeTree(_ path: String) throws(Failure) {
        if (try? FileManager.default.removeItem(atPath: path)) != nil { return }
        var status = FileStatus()
        if lstat(path, &status) != 0 && errno == ENOENT { return }
        restoreAccess(path)
        do {
            try FileManager.default.removeItem(atPath: path)
        } catch {
            throw .io("remove \(path): \(error)", errno)
        }
    }

    private static func restoreAccess(_ path: String) {
        var status = FileStatus()
        guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR, status.st_uid == geteuid() else { return }
        chmod(path, 0o700)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
            restoreAccess(path + "/" + name)
        }
    }

    /// What a step wrote to its result file, at most `limit` bytes; nil when there is nothing.
    ///
    /// The file is the script's: it is read only if it is a plain file with one link, owned by the
    /// run-as user when there is one, so that a link to the agent's own files cannot make the agent
    /// report them, and a FIFO cannot block it.
    func readResult(_ file: String, limit: Int = 64 * 1024) -> String? {
        let fd = open(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var status = FileStatus()
        guard fstat(fd, &status) == 0, status.st_mode & S_IFMT == S_IFREG, status.st_nlink == 1 else { return nil }
        if let owner, status.st_uid != owner.uid { return nil }
        var bytes = [UInt8](repeating: 0, count: limit)
        var total = 0
        while total < limit {
            let count = bytes.withUnsafeMutableBytes { raw in read(fd, raw.baseAddress.map { $0 + total }, limit - total) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            total += count
        }
        guard total > 0 else { return nil }
        // Invalid bytes decode to U+FFFD (three bytes each): cut the text to the limit again.
        return String(decoding: bytes[..<total], as: UTF8.self).truncatedUTF8(to: limit)
    }
}
