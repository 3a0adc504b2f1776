import Foundation
import Logging
import HummingbirdBcrypt
import NIOPosix

/// bcrypt hashing, run on the thread pool so that it never blocks the server's event loops.
struct Passwords: Sendable {
    let cost: UInt8

    func hash(_ password: String) async throws -> String {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    func verify(_ password: String, hash: String) async throws -> Bool {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }
    }
}

/// What a password must be: 12 to 72 characters (Unicode code points, as JSON Schema counts
/// `minLength`), at most 72 bytes in UTF-8 (bcrypt ignores what follows), and no NUL character.
enum PasswordRules {
    static let minimumCodePoints = 12
    static let maximumBytes = 72

    /// Why the password is not acceptable, or nil when it is.
    static func problem(_ password: String) -> String? {
        if password.unicodeScalars.count < minimumCodePoints || password.utf8.count > maximumBytes {
            return "must be at least \(minimumCodePoints) characters and at most \(maximumBytes) bytes in UTF-8"
        }
        if password.unicodeScalars.contains("\0") { return "must not contain a NUL character" }
        return nil
    }
}
