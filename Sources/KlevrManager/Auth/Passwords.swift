import Crypto
import Foundation
import Logging
import HummingbirdBcrypt
import KlevrCore
import NIOPosix
import Synchronization

/// bcrypt hashing, run on the thread pool so that it never blocks the server's event loops.
///
/// bcrypt reads at most 72 bytes, but the API allows 72 characters (up to 288 bytes in UTF-8): a
/// password longer than 72 bytes is hashed as the base64 of its SHA-256 (44 bytes), so that every
/// character counts. Passwords of at most 72 bytes are hashed as they are, so stored hashes stay valid.
struct Passwords: Sendable {
    let cost: UInt8
    private let unknownUser: UnknownUserHash

    init(cost: UInt8) {
        self.cost = cost
        self.unknownUser = UnknownUserHash()
    }

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

    /// Spends the time of a real verification for a user name that does not exist, so that a login
    /// answers unknown and known names in the same time: it verifies `password` against a hash of a
    /// random password made with the same cost (once per process). Always false.
    func verifyUnknownUser(_ password: String) async throws -> Bool {
        let hash: String
        if let existing = unknownUser.hash {
            hash = existing
        } else {
            hash = try await self.hash(Secrets.randomPassword())
            unknownUser.store(hash)
        }
        unknownUser.countVerification()
        _ = try await verify(password, hash: hash)
        return false
    }

    /// How many logins for unknown user names were checked against the dummy hash (for tests).
    var unknownUserVerifications: Int { unknownUser.verifications }
}

/// The dummy hash for unknown user names, made on first use, and a count of its uses.
private final class UnknownUserHash: Sendable {
    private let state = Mutex<(hash: String?, verifications: Int)>((nil, 0))

    var hash: String? { state.withLock { $0.hash } }
    var verifications: Int { state.withLock { $0.verifications } }

    func store(_ hash: String) {
        state.withLock { if $0.hash == nil { $0.hash = hash } }
    }

    func countVerification() {
        state.withLock { $0.verifications += 1 }
    }
}

/// What a password must be: 12 to 72 characters (Unicode code points, as JSON Schema counts
/// `minLength`), at most 72 bytes in UTF-8 (bcrypt ignores what follows), and no NUL character.
enum PasswordRules {
    static let minimumCodePoints = 12
    static let maximumCodePoints = 72

    /// Why the password is not acceptable, or nil when it is. Lengths are code points, as the document's
    /// schema counts them; a password over bcrypt's 72 bytes is hashed whole (see ``Passwords``).
    static func problem(_ password: String) -> String? {
        if !(minimumCodePoints...maximumCodePoints).contains(password.unicodeScalars.count) {
            return "must be \(minimumCodePoints) to \(maximumCodePoints) characters long"
        }
        if password.unicodeScalars.contains("\0") { return "must not contain a NUL character" }
        return nil
    }
}
