import KlevrCore
import Testing

/// The CLI accepts the short ids it prints: a prefix names the one id that starts with it.
@Suite struct IDPrefixTests {
    let ids = [
        "3f2a9c10-0000-4000-8000-000000000001", "3f2a9c20-0000-4000-8000-000000000002", "7b000000-0000-4000-8000-000000000003",
    ]

    @Test func aUniquePrefixResolves() {
        #expect(IDPrefix.resolve("7b", among: ids) == .unique("7b000000-0000-4000-8000-000000000003"))
        #expect(IDPrefix.resolve("3f2a9c1", among: ids) == .unique("3f2a9c10-0000-4000-8000-000000000001"))
        #expect(IDPrefix.resolve(ids[1], among: ids) == .unique(ids[1]))
    }

    @Test func anAmbiguousOrUnknownPrefixSaysSo() {
        #expect(IDPrefix.resolve("3f2a9c", among: ids) == .ambiguous([ids[0], ids[1]]))
        #expect(IDPrefix.resolve("ff", among: ids) == .none)
        #expect(IDPrefix.resolve("3f", among: []) == .none)
    }

    @Test func onlyHexAndDashesCanBePrefixes() {
        #expect(IDPrefix.isPossiblePrefix("3f2a9c"))
        #expect(IDPrefix.isPossiblePrefix(ids[0]))
        #expect(!IDPrefix.isPossiblePrefix(""))
        #expect(!IDPrefix.isPossiblePrefix("3F2A"))
        #expect(!IDPrefix.isPossiblePrefix("../x"))
        #expect(!IDPrefix.isPossiblePrefix(ids[0] + "0"))
    }
}
