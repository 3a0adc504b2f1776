import Testing

@testable import KlevrAgent

/// The output state machines without processes: masking, UTF-8 decoding and coalescing, with time
/// passed in.
@Suite struct OutputCoalescerTests {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    /// Feeds `input` cut at every pair of positions and checks the output is always `expected`.
    static func maskEverySplit(_ input: String, secrets: [String]) -> Set<String> {
        let all = bytes(input)
        var results: Set<String> = []
        for first in 0...all.count {
            for second in first...all.count {
                var masker = SecretMasker(secrets: secrets)
                var output = masker.mask(Array(all[..<first]))
                output += masker.mask(Array(all[first..<second]))
                output += masker.mask(Array(all[second...]))
                output += masker.finish()
                results.insert(text(output))
            }
        }
        return results
    }

    @Test func aSecretIsMaskedWhereverTheInputIsCut() {
        let secret = "abcdefgh12345678"
        #expect(Self.maskEverySplit("x abcdefgh12345678 y abcdefgh1234567", secrets: [secret]) == ["x ******** y abcdefgh1234567"])
        #expect(Self.maskEverySplit("abcdefgh12345678abcdefgh12345678", secrets: [secret]) == ["****************"])
    }

    @Test func ofTwoSecretsStartingTogetherTheLongerIsMasked() {
        #expect(Self.maskEverySplit("[secret-one-plus-more]", secrets: ["secret-one", "secret-one-plus-more"]) == ["[********]"])
        #expect(Self.maskEverySplit("[secret-one-plus]", secrets: ["secret-one", "secret-one-plus-more"]) == ["[********-plus]"])
    }

    @Test func shortAndEmptySecretsAreIgnored() {
        var masker = SecretMasker(secrets: ["", "1234567", "password"])
        #expect(Self.text(masker.mask(Self.bytes("1234567 password"))) == "1234567 ********")
        #expect(masker.maximumCarry == 7)
    }

    @Test func heldBackBytesAreBoundedAndFlushedAtTheEnd() {
        var masker = SecretMasker(secrets: ["0123456789abcdef"])
        #expect(Self.text(masker.mask(Self.bytes("data 0123456789abcde"))) == "data ")
        #expect(Self.text(masker.finish()) == "0123456789abcde")
        var plain = SecretMasker(secrets: [])
        #expect(Self.text(plain.mask(Self.bytes("0123"))) == "0123")
    }

    @Test func multibyteCharactersAreNeverSplit() {
        let input = Self.bytes("a€b😀c\u{00E9}")
        for cut in 0...input.count {
            var decoder = UTF8ChunkDecoder()
            let first = decoder.decode(Array(input[..<cut]))
            // Every piece that comes out is valid UTF-8 on its own.
            #expect(String(validating: first, as: UTF8.self) != nil)
            let rest = decoder.decode(Array(input[cut...])) + decoder.finish()
            #expect(Self.text(first + rest) == "a€b😀c\u{00E9}")
        }
    }

    @Test func invalidBytesBecomeReplacementCharacters() {
        var decoder = UTF8ChunkDecoder()
        #expect(Self.text(decoder.decode([0x61, 0xFF, 0x62])) == "a\u{FFFD}b")
        #expect(decoder.decode([0xE2, 0x82]).isEmpty)
        #expect(Self.text(decoder.finish()) == "\u{FFFD}")
    }

    @Test func smallWritesAreFlushedByAgeNotOneByOne() {
        var coalescer = OutputCoalescer(secrets: [])
        let start = ContinuousClock.now
        var chunks: [OutputCoalescer.Chunk] = []
        for index in 0..<50 {
            chunks += coalescer.append(Self.bytes("line \(index)\n"), from: .stdout, at: start + .milliseconds(index))
        }
        #expect(chunks.isEmpty)
        #expect(coalescer.tick(at: start + .milliseconds(99)).isEmpty)
        let flushed = coalescer.tick(at: start + .milliseconds(100))
        #expect(flushed == [.init(stream: .stdout, text: (0..<50).map { "line \($0)\n" }.joined())])
        #expect(coalescer.tick(at: start + .milliseconds(500)).isEmpty)
        // A write that arrives after the interval has passed is flushed by the write itself.
        _ = coalescer.append(Self.bytes("a"), from: .stderr, at: start + .milliseconds(600))
        #expect(coalescer.append(Self.bytes("b"), from: .stderr, at: start + .milliseconds(700)) == [.init(stream: .stderr, text: "ab")])
        _ = coalescer.append(Self.bytes("tail"), from: .stdout, at: start + .milliseconds(701))
        #expect(coalescer.finish() == [.init(stream: .stdout, text: "tail")])
    }

    @Test func aFullBufferIsFlushedAtOnceInBoundedChunks() {
        var coalescer = OutputCoalescer(secrets: [], flushBytes: 10)
        let now = ContinuousClock.now
        // Three-byte characters: a chunk of at most 10 bytes holds three of them.
        let chunks = coalescer.append(Self.bytes(String(repeating: "€", count: 7)), from: .stdout, at: now)
        #expect(chunks.map(\.text) == ["€€€", "€€€"])
        #expect(coalescer.finish().map(\.text) == ["€"])
    }

    @Test func streamsAreMaskedAndDecodedSeparately() {
        var coalescer = OutputCoalescer(secrets: ["topsecret!"])
        let now = ContinuousClock.now
        _ = coalescer.append(Self.bytes("topsec"), from: .stdout, at: now)
        _ = coalescer.append(Array(Self.bytes("ret! \u{20AC}").dropLast()), from: .stderr, at: now)
        _ = coalescer.append(Self.bytes("ret!"), from: .stdout, at: now)
        _ = coalescer.append([0xAC], from: .stderr, at: now)
        #expect(coalescer.finish() == [.init(stream: .stdout, text: "********"), .init(stream: .stderr, text: "ret! €")])
    }
}
