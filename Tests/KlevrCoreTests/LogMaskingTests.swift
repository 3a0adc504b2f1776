import KlevrCore
import Testing

@Suite struct LogMaskingTests {
    /// Streams `text` through a masker cut at `cuts` (byte offsets) and returns the output, checking the hold-back
    /// bound after every chunk.
    static func stream(_ text: [UInt8], secrets: [String], cuts: [Int]) -> [UInt8] {
        var masker = LogMasker(secrets: secrets)
        var output: [UInt8] = []
        var start = 0
        for cut in cuts + [text.count] {
            output += masker.mask(text[start..<cut])
            #expect(masker.heldBackCount <= max(0, masker.maximumSecretLength - 1))
            start = cut
        }
        return output + masker.finish()
    }

    /// Leftmost-longest replacement over the whole text, the naive way, as the reference.
    static func reference(_ text: [UInt8], secrets: [String]) -> [UInt8] {
        let values = secrets.map { Array($0.utf8) }.filter { $0.count >= 4 }.sorted { $0.count > $1.count }
        var output: [UInt8] = []
        var index = 0
        outer: while index < text.count {
            for value in values where index + value.count <= text.count && Array(text[index..<(index + value.count)]) == value {
                output += Array("***".utf8)
                index += value.count
                continue outer
            }
            output.append(text[index])
            index += 1
        }
        return output
    }

    static let cases: [(text: String, secrets: [String], expected: String)] = [
        ("user=admin pass=hunter22 token=abcd1234\n", ["hunter22", "abcd1234"], "user=admin pass=*** token=***\n"),
        ("hunter22hunter22 and hunter22", ["hunter22"], "****** and ***"),
        ("abcdefgh", ["abcdef", "cdefgh"], "***gh"),
        ("abcdefgh abcdxyz", ["abcd", "abcdefgh"], "*** ***xyz"),
        ("ends with a prefix hunter2", ["hunter22"], "ends with a prefix hunter2"),
        ("mot de passe: pässwörd!", ["pässwörd"], "mot de passe: ***!"),
        ("short abc values are kept", ["abc", "ab", ""], "short abc values are kept"),
        ("line1\nmulti\nline secret\nline2", ["multi\nline secret"], "line1\n***\nline2"),
        ("nothing to hide", [], "nothing to hide"),
    ]

    @Test(arguments: cases.indices)
    func masksAtEverySplit(caseIndex: Int) {
        let testCase = Self.cases[caseIndex]
        let text = Array(testCase.text.utf8)
        let expected = Array(testCase.expected.utf8)
        #expect(Self.reference(text, secrets: testCase.secrets) == expected)
        #expect(Self.stream(text, secrets: testCase.secrets, cuts: []) == expected)
        // One cut at every position, two cuts at every pair of positions, and one byte at a time.
        for first in 0...text.count {
            #expect(Self.stream(text, secrets: testCase.secrets, cuts: [first]) == expected, "cut at \(first)")
            for second in first...text.count {
                #expect(Self.stream(text, secrets: testCase.secrets, cuts: [first, second]) == expected, "cuts at \(first), \(second)")
            }
        }
        #expect(Self.stream(text, secrets: testCase.secrets, cuts: Array(0...text.count)) == expected)
    }

    @Test func randomStreamsMatchTheReference() {
        var generator = SplitMix64(seed: 42)
        let secrets = ["s3cr3t", "s3cr3t-longer", "t-lo", "zzzz"]
        let alphabet = Array("s3cr3t-longerzz ".utf8)
        for _ in 0..<300 {
            let text = (0..<Int.random(in: 0...80, using: &generator)).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] }
            let cuts = (0..<Int.random(in: 0...6, using: &generator)).map { _ in Int.random(in: 0...text.count, using: &generator) }.sorted()
            #expect(Self.stream(text, secrets: secrets, cuts: cuts) == Self.reference(text, secrets: secrets))
        }
    }

    @Test func holdsBackOnlyAPossibleStart() {
        var masker = LogMasker(secrets: ["hunter22"])
        #expect(masker.mask(Array("password hun".utf8)) == Array("password ".utf8))
        #expect(masker.heldBackCount == 3)
        #expect(masker.mask(Array("ter2".utf8)) == [])
        #expect(masker.heldBackCount == 7)
        #expect(masker.mask(Array("2 ok".utf8)) == Array("*** ok".utf8))
        #expect(masker.heldBackCount == 0)
        #expect(masker.mask(Array("hunter2".utf8)) == [])
        #expect(masker.finish() == Array("hunter2".utf8))
    }

    @Test func masksWholeTexts() {
        let masker = LogMasker(secrets: ["hunter22"])
        #expect(masker.mask(text: "a hunter22 b") == "a *** b")
        #expect(LogMasker(secrets: ["abc"], minimumLength: 3).mask(text: "xabcx") == "x***x")
        #expect(LogMasker(secrets: ["0123456789abcdef"], minimumLength: 8, replacement: "********").mask(text: "k=0123456789abcdef.")
            == "k=********.")
    }
}

/// A small deterministic generator, so a failing random case can be reproduced.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
