/// Replaces the agent's secrets in a byte stream with `********`, also when a secret arrives split
/// across two reads.
///
/// A pure value: bytes in, bytes out. Bytes that could be the beginning of a secret are held back
/// (at most the longest secret's length minus one) until the next input shows whether they are, or
/// until ``finish()``.
struct SecretMasker: Sendable {
    /// What a secret is replaced with.
    static let mask: [UInt8] = Array("********".utf8)
    /// Shorter values are not masked: they would mask ordinary output and protect nothing.
    static let minimumLength = 8

    /// The secrets as bytes, longest first, so that of two secrets starting at one place the longer wins.
    private let secrets: [[UInt8]]
    /// Which byte values start a secret: the fast path for everything else.
    private let firstBytes: Set<UInt8>
    private var carry: [UInt8] = []

    /// - Parameter minimumLength: shorter secrets are ignored (the agent's own are long; a run's credentials
    ///   are masked from 4 bytes, see ``Executor``).
    init(secrets: [String], minimumLength: Int = SecretMasker.minimumLength) {
        let usable = Set(secrets.map { Array($0.utf8) }.filter { $0.count >= minimumLength })
        self.secrets = usable.sorted { $0.count != $1.count ? $0.count > $1.count : $0.lexicographicallyPrecedes($1) }
        self.firstBytes = Set(self.secrets.compactMap(\.first))
    }

    /// The longest run of bytes held back between two inputs.
    var maximumCarry: Int { max(0, (secrets.first?.count ?? 0) - 1) }

    /// Masks `bytes` (after what was held back) and returns what is safe to pass on.
    mutating func mask(_ bytes: [UInt8]) -> [UInt8] {
        if secrets.isEmpty { return bytes }
        let (output, held) = Self.scan(carry + bytes, secrets: secrets, firstBytes: firstBytes, final: false)
        carry = held
        return output
    }

    /// Masks and returns what was held back; the stream has ended.
    mutating func finish() -> [UInt8] {
        defer { carry = [] }
        if carry.isEmpty { return [] }
        return Self.scan(carry, secrets: secrets, firstBytes: firstBytes, final: true).output
    }

    /// One left-to-right pass: a secret found whole is replaced; a tail that is the beginning of a
    /// secret is held (unless `final`); every other byte passes.
    private static func scan(_ buffer: [UInt8], secrets: [[UInt8]], firstBytes: Set<UInt8>, final: Bool) -> (output: [UInt8], held: [UInt8]) {
        var output: [UInt8] = []
        output.reserveCapacity(buffer.count)
        var index = 0
        scanning: while index < buffer.count {
            let byte = buffer[index]
            if firstBytes.contains(byte) {
                let remaining = buffer.count - index
                for secret in secrets where secret[0] == byte {
                    if remaining >= secret.count {
                        if buffer[index..<(index + secret.count)].elementsEqual(secret) {
                            output += mask
                            index += secret.count
                            continue scanning
                        }
                    } else if !final && buffer[index...].elementsEqual(secret[0..<remaining]) {
                        return (output, Array(buffer[index...]))
                    }
                }
            }
            output.append(byte)
            index += 1
        }
        return (output, [])
    }
}
