import Crypto
import Foundation
import KlevrCore

/// The manager's run-signing key, kept in its data dir (`manager-signing.key`, mode 0600) so that
/// agents enrolled earlier keep trusting it across restarts.
public enum SigningKeyFile {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Loads the key, or creates it on first start.
    public static func loadOrCreate(dataDir: String) throws -> Curve25519.Signing.PrivateKey {
        let path = dataDir + "/manager-signing.key"
        if let data = FileManager.default.contents(atPath: path) {
            // A key file left with a wider mode (copied, restored from a backup) is made private again.
            try PrivateFile.restrict(path)
            guard let raw = Data(base64Encoded: String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)),
                let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw)
            else { throw Failure(description: "\(path) does not hold a signing key; restore it from a backup or remove it (agents must then re-enroll)") }
            return key
        }
        let key = Curve25519.Signing.PrivateKey()
        try PrivateFile.create(path, contents: Data(key.rawRepresentation.base64EncodedString().utf8))
        return key
    }
}
