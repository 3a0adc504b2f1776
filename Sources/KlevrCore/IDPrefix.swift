/// Resolving the short id prefixes that the CLI prints (`3f2a9c`) to the one full id they stand for.
public enum IDPrefix {
    /// What a prefix stands for among known ids.
    public enum Resolution: Sendable, Equatable {
        case unique(String)
        case none
        /// Several ids start with the prefix (at most a few are listed).
        case ambiguous([String])
    }

    /// Whether `text` can be the start of an id: 1 to 36 characters of lowercase hex digits and `-`.
    public static func isPossiblePrefix(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 36 && text.unicodeScalars.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) || $0 == "-" }
    }

    /// The id among `ids` that starts with `prefix`; a full id matches itself.
    public static func resolve(_ prefix: String, among ids: some Sequence<String>) -> Resolution {
        var matches: [String] = []
        for id in ids where id.hasPrefix(prefix) && !matches.contains(id) {
            if id == prefix { return .unique(id) }
            matches.append(id)
        }
        switch matches.count {
        case 0: return .none
        case 1: return .unique(matches[0])
        default: return .ambiguous(Array(matches.prefix(5)))
        }
    }
}
