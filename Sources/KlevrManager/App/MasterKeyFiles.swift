import Foundation
import KlevrCore

/// The master key files in the manager's data dir: `master.key` (the current key, created at first start,
/// mode 0600) and the keys a rotation replaced or was about to install (`master.key.*`), which still open
/// values sealed under them. A rotation that stopped half-way therefore never makes a secret unreadable.
public enum MasterKeyFiles {
    public static let currentName = "master.key"
    /// The key a rotation installs, written before any value is re-encrypted.
    public static let nextName = "master.key.next"
    /// Replaced keys: `master.key.retired-<id>`.
    public static let retiredPrefix = "master.key.retired-"

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The box of the data dir's keys: the current one (created if missing) and every other `master.key.*`.
    public static func load(dataDir: String) throws -> SecretBox {
        let current: MasterKey
        do {
            current = try MasterKey.loadOrCreate(at: dataDir + "/" + currentName)
        } catch {
            throw Failure(description: error.description)
        }
        return SecretBox(current: current, previous: try otherKeys(dataDir: dataDir))
    }

    /// The keys of `master.key.*` files (a rotation's next key and the retired ones).
    static func otherKeys(dataDir: String) throws -> [MasterKey] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dataDir)) ?? []
        return try names.filter { $0.hasPrefix(currentName + ".") }.sorted().map { name in
            do {
                return try MasterKey.load(from: dataDir + "/" + name)
            } catch {
                throw Failure(description: "\(error) (a master.key.* file is a key a rotation replaced or installs)")
            }
        }
    }

    /// Replaces the current key with a new one and re-encrypts every stored secret under it.
    ///
    /// The order makes every crash point safe: the new key is written first (`master.key.next`), then the
    /// values are re-encrypted in one transaction, then the old key becomes `master.key.retired-<id>` and the
    /// new one `master.key`. A manager started at any point between opens every value, since it loads all
    /// `master.key.*` files too. Run it with the manager stopped: a running manager seals new values under
    /// the key it loaded at start.
    /// - Returns: the old and the new key's ids, and how many values were re-encrypted.
    public static func rotate(dataDir: String, reseal: (SecretBox) async throws -> Int) async throws -> (old: String, new: String, count: Int) {
        let box = try load(dataDir: dataDir)
        let nextPath = dataDir + "/" + nextName
        let next: MasterKey
        if FileManager.default.fileExists(atPath: nextPath) {
            // A rotation stopped before it finished: go on with the key it had written.
            do { next = try MasterKey.load(from: nextPath) } catch { throw Failure(description: error.description) }
        } else {
            next = MasterKey.generate()
            do { try next.write(to: nextPath) } catch { throw Failure(description: error.description) }
        }
        let old = box.current
        let count = try await reseal(SecretBox(current: next, previous: [old] + (try otherKeys(dataDir: dataDir))))
        let currentPath = dataDir + "/" + currentName
        let retiredPath = dataDir + "/" + retiredPrefix + old.idHex
        guard rename(currentPath, retiredPath) == 0 else {
            throw Failure(description: "cannot rename \(currentPath): \(String(cString: strerror(errno)))")
        }
        guard rename(nextPath, currentPath) == 0 else {
            throw Failure(description: "cannot rename \(nextPath) to \(currentPath): \(String(cString: strerror(errno)))")
        }
        return (old.idHex, next.idHex, count)
    }
}
