import Crypto
import Foundation

/// Authentication of agent-to-agent requests with the zone's peer secret.
///
/// Every peer request carries `X-Klevr-Peer: <agent id>.<epoch ms>.<base64 HMAC-SHA256>` where the HMAC
/// covers `method \n path \n time \n hex SHA-256 of the body`. The receiver accepts it only within
/// 60 s of its own clock. Without the zone's secret nobody can join a zone or inject anything.
public enum PeerAuth {
    public static let header = "X-Klevr-Peer"
    public static let window: Int64 = 60_000

    /// The zone's peer secret as the manager derives it: HMAC-SHA256 of the zone id under a key only the
    /// manager holds. Nothing needs to be stored.
    public static func zoneSecret(managerKey: Data, zoneID: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("klevr-zone-peer-v1:\(zoneID)".utf8), using: SymmetricKey(data: managerKey))
        return Data(mac).base64EncodedString()
    }

    /// The header value for a request.
    public static func sign(secret: String, agentID: String, method: String, path: String, body: Data, now: Int64) -> String {
        "\(agentID).\(now).\(mac(secret: secret, method: method, path: path, time: now, body: body))"
    }

    /// The agent id a valid header was signed by, or nil.
    public static func verify(header value: String, secret: String, method: String, path: String, body: Data, now: Int64) -> String? {
        let parts = value.split(separator: ".", maxSplits: 2).map(String.init)
        guard parts.count == 3, Validation.isValidID(parts[0]), let time = Int64(parts[1]), abs(now - time) <= window else { return nil }
        let expected = mac(secret: secret, method: method, path: path, time: time, body: body)
        // Constant-time comparison of the two MACs.
        let a = Array(expected.utf8)
        let b = Array(parts[2].utf8)
        guard a.count == b.count else { return nil }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0 ? parts[0] : nil
    }

    private static func mac(secret: String, method: String, path: String, time: Int64, body: Data) -> String {
        let bodyHash = SHA256.hash(data: body).map { String(format: "%02x", $0) }.joined()
        let message = Data("\(method)\n\(path)\n\(time)\n\(bodyHash)".utf8)
        let key = SymmetricKey(data: Data(base64Encoded: secret) ?? Data(secret.utf8))
        return Data(HMAC<SHA256>.authenticationCode(for: message, using: key)).base64EncodedString()
    }
}
