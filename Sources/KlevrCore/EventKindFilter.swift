/// Which event kinds a subscriber wants, written as the events API's `kind` query writes them: a kind
/// (`run.failed`), a family (`run`, the same as `run.*`), or several of them.
///
/// An empty filter selects every kind. The patterns are kept as they were given (normalized: `run.*` is stored
/// as `run`), so that a kind added to a family later is selected by a filter naming the family.
public struct EventKindFilter: Sendable, Hashable, Codable {
    /// At most this many patterns in one filter.
    public static let maximumPatterns = 64

    /// The patterns, each a kind or a family, without duplicates, in the order given.
    public let patterns: [String]

    /// Every kind.
    public static let all = EventKindFilter(validated: [])

    /// Parses patterns such as `run`, `run.failed`, `agent.*`.
    /// - Throws: ``EventKindFilterError`` naming the first pattern that selects no known kind.
    public init(parsing patterns: [String]) throws(EventKindFilterError) {
        guard patterns.count <= Self.maximumPatterns else { throw .tooMany(patterns.count) }
        var normalized: [String] = []
        for pattern in patterns {
            let family = pattern.hasSuffix(".*") ? String(pattern.dropLast(2)) : pattern
            guard !family.isEmpty, !Self.kinds(matching: family).isEmpty else { throw .unknown(pattern) }
            if !normalized.contains(family) { normalized.append(family) }
        }
        self.init(validated: normalized)
    }

    private init(validated patterns: [String]) {
        self.patterns = patterns
    }

    /// Whether an event of `kind` is selected.
    public func matches(_ kind: EventKind) -> Bool {
        patterns.isEmpty || patterns.contains { kind.rawValue == $0 || kind.rawValue.hasPrefix($0 + ".") }
    }

    /// The kinds a pattern (a kind or a family, without `.*`) selects.
    public static func kinds(matching family: String) -> [EventKind] {
        EventKind.allCases.filter { $0.rawValue == family || $0.rawValue.hasPrefix(family + ".") }
    }

    public init(from decoder: any Decoder) throws {
        let patterns = try decoder.singleValueContainer().decode([String].self)
        do {
            try self.init(parsing: patterns)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(patterns)
    }
}

/// Why an event kind filter was refused.
public enum EventKindFilterError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The pattern names no event kind or family.
    case unknown(String)
    /// More patterns than ``EventKindFilter/maximumPatterns``.
    case tooMany(Int)

    public var description: String {
        switch self {
        case .unknown(let pattern): "'\(pattern)' is not an event kind or family (such as run, run.failed, agent.*)"
        case .tooMany(let count): "\(count) patterns; at most \(EventKindFilter.maximumPatterns)"
        }
    }
}
