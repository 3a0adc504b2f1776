/// Replaces every occurrence of a set of secret values (credentials) in a stream of log chunks with `***`,
/// also when a value is split across chunks.
///
/// It works on bytes (the UTF-8 of the values), so it needs no decoding of the log and cannot be misled by a
/// chunk that ends inside a multi-byte character. Where values overlap, the leftmost match wins, and of those
/// the longest.
///
/// **Chunk boundaries.** A chunk's tail that could still be the start of a value is held back until the next
/// chunk (or ``finish()``) decides: at most ``maximumSecretLength`` − 1 bytes. The output is therefore exactly
/// the same however the stream is cut into chunks; call ``finish()`` at the end of the stream to flush the
/// held-back bytes.
///
/// **Short values are not masked.** A value shorter than the minimum length (``defaultMinimumLength``, 4 bytes)
/// is ignored: values like `1`, `on` or `yes` occur all over ordinary output, masking them would shred every
/// log, and the pattern of the stars would itself reveal the value. Such a value is not a secret anyway.
///
/// **What it does not catch.** Only the exact bytes of each value are replaced. A script that prints a value
/// transformed — base64 or hex encoded, URL-escaped, reversed, split by other output, or one character per
/// line — leaks it in that form; masking protects against accidents, not against a script that wants to
/// reveal a secret. Callers that know an encoding in use may add its form as another value.
public struct LogMasker: Sendable {
    /// What a value is replaced with unless told otherwise.
    public static let defaultReplacement = "***"
    /// Values shorter than this many bytes are not masked (see the type's documentation).
    public static let defaultMinimumLength = 4

    /// What a value is replaced with.
    public let replacement: [UInt8]
    /// The values masked, longest first.
    private let secrets: [[UInt8]]
    /// `startsSecret[b]`: some value starts with byte `b` (a fast path for the other bytes).
    private let startsSecret: [Bool]
    /// The bytes held back from earlier chunks.
    private var held: [UInt8] = []

    /// The length of the longest masked value in bytes (0 when none).
    public let maximumSecretLength: Int

    /// A masker for `secrets` (their UTF-8 bytes); values shorter than `minimumLength` bytes are ignored.
    public init(secrets: some Sequence<String>, minimumLength: Int = defaultMinimumLength, replacement: String = defaultReplacement) {
        self.init(secretBytes: secrets.map { Array($0.utf8) }, minimumLength: minimumLength, replacement: replacement)
    }

    /// A masker for raw byte values; values shorter than `minimumLength` bytes are ignored.
    public init(secretBytes: some Sequence<[UInt8]>, minimumLength: Int = defaultMinimumLength, replacement: String = defaultReplacement) {
        self.replacement = Array(replacement.utf8)
        let kept = Set(secretBytes.filter { $0.count >= max(1, minimumLength) })
        secrets = kept.sorted { $0.count != $1.count ? $0.count > $1.count : $0.lexicographicallyPrecedes($1) }
        var starts = [Bool](repeating: false, count: 256)
        for secret in secrets {
            if let first = secret.first { starts[Int(first)] = true }
        }
        startsSecret = starts
        maximumSecretLength = secrets.first?.count ?? 0
    }

    /// How many bytes are currently held back (always less than ``maximumSecretLength``).
    public var heldBackCount: Int { held.count }

    /// Masks the next chunk; returns what can be emitted now.
    public mutating func mask(_ chunk: some Sequence<UInt8>) -> [UInt8] {
        held.append(contentsOf: chunk)
        return drain(final: false)
    }

    /// Masks and returns whatever is held back, at the end of the stream.
    public mutating func finish() -> [UInt8] {
        drain(final: true)
    }

    /// Masks a whole text at once (for stored fields that are not streamed).
    public func mask(text: String) -> String {
        var copy = self
        copy.held = []
        return String(decoding: copy.mask(Array(text.utf8)) + copy.finish(), as: UTF8.self)
    }

    private mutating func drain(final: Bool) -> [UInt8] {
        let buffer = held
        let count = buffer.count
        var output: [UInt8] = []
        output.reserveCapacity(count)
        var index = 0
        while index < count {
            let byte = buffer[index]
            guard startsSecret[Int(byte)] else {
                output.append(byte)
                index += 1
                continue
            }
            var longest = 0
            var couldStillMatch = false
            let available = count - index
            for secret in secrets where secret[0] == byte {
                if available >= secret.count {
                    if secret.count > longest, buffer[index..<(index + secret.count)].elementsEqual(secret) { longest = secret.count }
                } else if !final, buffer[index..<count].elementsEqual(secret[0..<available]) {
                    couldStillMatch = true
                }
            }
            // A longer value may start here and continue in the next chunk: decide when it comes.
            if couldStillMatch { break }
            if longest > 0 {
                output.append(contentsOf: replacement)
                index += longest
            } else {
                output.append(byte)
                index += 1
            }
        }
        held = index < count ? Array(buffer[index...]) : []
        return output
    }
}
