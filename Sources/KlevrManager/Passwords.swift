import Crypto
import Foundation
import Logging
import HummingbirdBcrypt
import NIOPosix

/// bcrypt hashing, run on the thread pool so that it never blocks the server's event loops.
///
/// bcrypt reads at most 72 bytes, but the API allows 72 characters (up to 288 bytes in UTF-8): a
/// password longer than 72 bytes is hashed as the base64 of its SHA-256 (44 bytes), so that every
/// character counts. Passwords of at most 72 bytes are hashed as they are, so stored hashes stay valid.
struct Passwords: Sendable {
    let cost: UInt8

    func hash(_ password: String) async throws -> String {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(Self.bcryptInput(password), cost: cost) }
    }

    func verify(_ password: String, hash: String) async throws -> Bool {
        try await NIOThreadPool.singleton.runIfActive {
            if Bcrypt.verify(Self.bcryptInput(password), hash: hash) { return true }
            // A first admin password longer than 72 bytes given before this rule was hashed truncated.
            return password.utf8.count > 72 && Bcrypt.verify(password, hash: hash)
        }
    }

    /// What bcrypt is given for `password`.
    static func bcryptInput(_ password: String) -> String {
        guard password.utf8.count > 72 else { return password }
        return Data(SHA256.hash(data: Data(password.utf8))).base64EncodedString()
    }
}
