import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why the master key file could not be used.
public enum MasterKeyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file exists but could not be opened or read.
    case unreadable(path: String, reason: String)
    /// The path is a symbolic link, a directory or another non-regular file.
    case notARegularFile(path: String)
    /// Group or others have some permission on the file.
    case tooOpen(path: String, mode: Int)
    /// The file belongs to another user than the one running the manager.
    case wrongOwner(path: String, owner: Int)
    /// The file does not hold exactly ``MasterKey/byteCount`` bytes.
    case wrongSize(path: String, size: Int)
    /// A new key file could not be written.
    case cannotCreate(path: String, reason: String)
    /// Key material of the wrong length was given.
    case invalidKeyLength(Int)

    /// What is wrong and what to do about it.
    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "cannot read the master key file \(path): \(reason)"
        case .notARegularFile(let path): "the master key file \(path) is not a regular file (symbolic links are not followed)"
        case .tooOpen(let path, let mode):
            "the master key file \(path) has mode \(String(mode, radix: 8)): group and others must have no access (chmod 600 \(path))"
        case .wrongOwner(let path, let owner): "the master key file \(path) belongs to user \(owner), not to the user running Klevr"
        case .wrongSize(let path, let size):
            "the master key file \(path) holds \(size) bytes, not \(MasterKey.byteCount): it is not a Klevr master key (or it was damaged)"
        case .cannotCreate(let path, let reason): "cannot create the master key file \(path): \(reason)"
        case .invalidKeyLength(let count): "a master key is \(MasterKey.byteCount) bytes, got \(count)"
        }
    }
}

/// The key that encrypts secrets at rest (credentials, webhook secrets): 32 random bytes in a file of their own.
///
/// The file is created at first use with mode 0600 (never wider, not even for a moment) and is refused later
/// if it is not a regular file, has any group or other permission, belongs to another user, or does not hold
/// exactly 32 bytes: a key that others could read protects nothing, and a truncated one would make every secret
/// unreadable. Keep a copy of it with the database backups: without it the secrets cannot be decrypted.
///
/// Each key has an ``id`` (derived from it by a hash, revealing nothing of it) that sealed values carry, so that
/// after a rotation the box knows which key opens which value.
public struct MasterKey: Sendable {
    /// The key length in bytes (AES-256).
    public static let byteCount = 32

    let key: SymmetricKey
    /// The first 8 bytes of SHA-256 over a fixed label and the key.
    public let id: [UInt8]

    /// The key's id in hex (for logs and the rotation command's output).
    public var idHex: String { id.map { String(format: "%02x", $0) }.joined() }

    /// A key from raw bytes.
    /// - Throws: ``MasterKeyError/invalidKeyLength(_:)`` unless there are exactly ``byteCount`` bytes.
    public init(bytes: some DataProtocol) throws(MasterKeyError) {
        guard bytes.count == Self.byteCount else { throw .invalidKeyLength(bytes.count) }
        self.init(key: SymmetricKey(data: Data(bytes)))
    }

    private init(key: SymmetricKey) {
        self.key = key
        var hasher = SHA256()
        hasher.update(data: Data("klevr master key id v1".utf8))
        key.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        id = Array(hasher.finalize().prefix(8))
    }

    /// A new random key (from the system's CSPRNG).
    public static func generate() -> MasterKey {
        MasterKey(key: SymmetricKey(size: .bits256))
    }

    /// The key in the file at `path`, creating the file with a new key (mode 0600) if there is none.
    public static func loadOrCreate(at path: String) throws(MasterKeyError) -> MasterKey {
        var info = stat()
        if lstat(path, &info) != 0, errno == ENOENT {
            let key = generate()
            do {
                try key.write(to: path)
                return key
            } catch {
                // Another process may have created it in the meantime: use that one if it is sound.
                if let existing = try? load(from: path) { return existing }
                throw error
            }
        }
        return try load(from: path)
    }

    /// The key in the file at `path`, after checking the file's type, owner, mode and size.
    public static func load(from path: String) throws(MasterKeyError) -> MasterKey {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ELOOP { throw .notARegularFile(path: path) }
            throw .unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw .notARegularFile(path: path) }
        let mode = Int(info.st_mode & 0o777)
        guard mode & 0o077 == 0 else { throw .tooOpen(path: path, mode: mode) }
        guard info.st_uid == geteuid() else { throw .wrongOwner(path: path, owner: Int(info.st_uid)) }
        guard info.st_size == Self.byteCount else { throw .wrongSize(path: path, size: Int(info.st_size)) }
        var buffer = [UInt8](repeating: 0, count: Self.byteCount)
        let count = read(fd, &buffer, Self.byteCount)
        guard count == Self.byteCount else { throw .unreadable(path: path, reason: "short read (\(count) bytes)") }
        return try MasterKey(bytes: buffer)
    }

    /// Writes the key to a new file at `path` with mode 0600 (an existing file is never overwritten).
    public func write(to path: String) throws(MasterKeyError) {
        let data = key.withUnsafeBytes { Data($0) }
        do {
            try PrivateFile.create(path, contents: data)
        } catch {
            throw .cannotCreate(path: path, reason: "\(error)")
        }
    }
}
