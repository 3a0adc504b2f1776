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
