import Crypto
import Foundation

/// A webhook signing secret in the Standard Webhooks form: `whsec_` followed by the base64 of 24 to 64 random
/// bytes (https://www.standardwebhooks.com).
public struct WebhookSecret: Sendable, Hashable, CustomStringConvertible {
    /// The prefix every secret carries.
    public static let prefix = "whsec_"
    /// The allowed key lengths in bytes.
    public static let byteCounts = 24...64

    /// The HMAC key.
    public let bytes: [UInt8]

    /// A new random secret of 32 bytes.
    public static func generate() -> WebhookSecret {
        WebhookSecret(validated: SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
    }

    /// Parses `whsec_<base64>`.
    /// - Throws: ``WebhookError/invalidSecret(_:)``.
    public init(parsing text: String) throws(WebhookError) {
        guard text.hasPrefix(Self.prefix) else { throw .invalidSecret("a webhook secret starts with \"\(Self.prefix)\"") }
        guard let data = Data(base64Encoded: String(text.dropFirst(Self.prefix.count))) else {
            throw .invalidSecret("the part after \"\(Self.prefix)\" is not base64")
        }
        guard Self.byteCounts.contains(data.count) else {
            throw .invalidSecret("the key is \(data.count) bytes; it must be \(Self.byteCounts.lowerBound) to \(Self.byteCounts.upperBound)")
        }
        self.init(validated: Array(data))
    }

    private init(validated bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// `whsec_<base64>`: the form shown once to the operator and given to receivers.
    public var text: String { Self.prefix + Data(bytes).base64EncodedString() }

    /// Redacted: a secret never ends up in a log by interpolation.
    public var description: String { "whsec_…" }
}

/// Why a webhook secret or delivery was refused.
public enum WebhookError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The secret is not a Standard Webhooks secret.
    case invalidSecret(String)
    /// A required header is absent.
    case missingHeader(String)
    /// `webhook-timestamp` is not an integer number of seconds.
    case invalidTimestamp(String)
    /// The timestamp is further from now than the tolerance (replayed, or a clock far off).
    case timestampOutOfTolerance(timestamp: Int64, now: Int64)
    /// No `v1` signature in `webhook-signature` matches the body.
    case noMatchingSignature

    /// What is wrong.
    public var description: String {
        switch self {
        case .invalidSecret(let detail): "invalid webhook secret: \(detail)"
        case .missingHeader(let name): "the \(name) header is missing"
        case .invalidTimestamp(let value): "the webhook-timestamp \"\(value)\" is not a number of seconds"
        case .timestampOutOfTolerance(let timestamp, let now):
            "the webhook-timestamp \(timestamp) is \(abs(now - timestamp)) s from now, more than the \(StandardWebhooks.tolerance) s tolerance"
        case .noMatchingSignature: "no webhook-signature matches the body"
        }
    }
}

/// Signing and verifying deliveries as the Standard Webhooks specification says.
///
/// The signed content is `<webhook-id>.<webhook-timestamp>.<body>` (the body's exact bytes, as sent); the
/// signature is `v1,` followed by the base64 HMAC-SHA256 of it under the secret's bytes. `webhook-signature` may
/// hold several space-separated signatures (during a secret rotation); one valid `v1` signature is enough, and
/// entries of other versions are ignored. A receiver refuses a timestamp more than five minutes from its clock.
public enum StandardWebhooks {
    /// Header names.
    public static let idHeader = "webhook-id"
    public static let timestampHeader = "webhook-timestamp"
    public static let signatureHeader = "webhook-signature"
    /// How far (seconds) a timestamp may be from the verifier's clock, either way.
    public static let tolerance: Int64 = 300

    /// A new message id (`msg_` and 128 random bits). Retries of one delivery keep its id, so receivers can
    /// drop duplicates.
    public static func newMessageID() -> String {
        "msg_" + Secrets.randomToken(bytes: 16)
    }

    /// `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`.
    public static func signature(secret: WebhookSecret, id: String, timestamp: Int64, body: some DataProtocol) -> String {
        "v1," + Data(mac(secret: secret, id: id, timestamp: timestamp, body: body)).base64EncodedString()
    }

    /// The three headers of a delivery, in order.
    public static func headers(secret: WebhookSecret, id: String, timestamp: Int64, body: some DataProtocol) -> [(name: String, value: String)] {
        [
            (idHeader, id), (timestampHeader, String(timestamp)),
            (signatureHeader, signature(secret: secret, id: id, timestamp: timestamp, body: body)),
        ]
    }

    /// Verifies a delivery as a receiver does.
    /// - Parameters:
    ///   - header: looks a header up by its lowercase name.
    ///   - now: the verifier's clock, epoch seconds.
    /// - Throws: ``WebhookError``.
    public static func verify(
        secret: WebhookSecret, body: some DataProtocol, now: Int64, header: (String) -> String?
    ) throws(WebhookError) {
        guard let id = header(idHeader) else { throw .missingHeader(idHeader) }
        guard let timestampText = header(timestampHeader) else { throw .missingHeader(timestampHeader) }
        guard let signatures = header(signatureHeader) else { throw .missingHeader(signatureHeader) }
        guard timestampText.count <= 19, timestampText.allSatisfy({ $0.isASCII && $0.isNumber }), let timestamp = Int64(timestampText) else {
            throw .invalidTimestamp(timestampText)
        }
        guard abs(now - timestamp) <= tolerance else { throw .timestampOutOfTolerance(timestamp: timestamp, now: now) }
        let key = SymmetricKey(data: secret.bytes)
        let content = signedContent(id: id, timestamp: timestamp, body: body)
        for entry in signatures.split(separator: " ") {
            guard entry.hasPrefix("v1,"), let given = Data(base64Encoded: String(entry.dropFirst(3))) else { continue }
            // Constant-time comparison.
            if HMAC<SHA256>.isValidAuthenticationCode(given, authenticating: content, using: key) { return }
        }
        throw .noMatchingSignature
    }

    static func mac(secret: WebhookSecret, id: String, timestamp: Int64, body: some DataProtocol) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: signedContent(id: id, timestamp: timestamp, body: body), using: SymmetricKey(data: secret.bytes)))
    }

    static func signedContent(id: String, timestamp: Int64, body: some DataProtocol) -> Data {
        var content = Data("\(id).\(timestamp).".utf8)
        content.append(contentsOf: body)
        return content
    }
}
