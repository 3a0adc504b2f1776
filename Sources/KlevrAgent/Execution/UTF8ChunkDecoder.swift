/// Turns a byte stream read in arbitrary pieces into valid UTF-8 without splitting a multibyte
/// character across two pieces.
///
/// The incomplete character at the end of a piece (at most three bytes) is kept for the next one.
/// Invalid bytes become U+FFFD, as does an incomplete character left at ``finish()``.
struct UTF8ChunkDecoder: Sendable {
    private var carry: [UInt8] = []

    /// The valid UTF-8 bytes of everything that can be decoded so far.
    mutating func decode(_ bytes: [UInt8]) -> [UInt8] {
        let buffer = carry + bytes
        let end = Self.completePrefixLength(buffer)
        carry = Array(buffer[end...])
        if end == 0 { return [] }
        return Self.repaired(buffer[..<end])
    }

    /// Decodes what was kept back, lossily: the stream has ended.
    mutating func finish() -> [UInt8] {
        defer { carry = [] }
        return carry.isEmpty ? [] : Self.repaired(carry[...])
    }

    /// The length of `buffer` without a trailing incomplete (but so far valid-looking) multibyte
    /// character.
    static func completePrefixLength(_ buffer: [UInt8]) -> Int {
        // Find the last byte that is not a continuation byte (10xxxxxx) among the last four.
        var start = buffer.count - 1
        while start >= 0 && start >= buffer.count - 4 && buffer[start] & 0xC0 == 0x80 { start -= 1 }
        guard start >= 0, start >= buffer.count - 4 else { return buffer.count }
        let lead = buffer[start]
        let expected: Int
        switch lead {
        case 0xC2...0xDF: expected = 2
        case 0xE0...0xEF: expected = 3
        case 0xF0...0xF4: expected = 4
        default: return buffer.count
        }
        return buffer.count - start < expected ? start : buffer.count
    }

    private static func repaired(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        Array(String(decoding: bytes, as: UTF8.self).utf8)
    }
}
