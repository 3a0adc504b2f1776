import Crypto
import KlevrCore

// TEMPORARY until main's master key lands (`Manager.secretBox`): a box keyed from the signing key.
extension Manager {
    var secretBox: SecretBox {
        get throws {
            let bytes = SHA256.hash(data: Array("klevr-temporary-box".utf8) + Array(config.signingKey.rawRepresentation))
            return SecretBox(current: try MasterKey(bytes: Array(bytes)))
        }
    }
}
