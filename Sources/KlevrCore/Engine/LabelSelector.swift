/// A label selector, Kubernetes' syntax: requirements separated by commas, all of which must hold.
///
/// | requirement | holds when |
/// |---|---|
/// | `key=value`, `key==value` | the agent has the label with that value |
/// | `key!=value` | the agent does not have the label with that value (also when it lacks the key) |
/// | `key` | the agent has the key (any value) |
/// | `!key` | the agent does not have the key |
/// | `key in (a,b)` | the agent has the key with one of the values |
/// | `key notin (a,b)` | the agent lacks the key or has another value |
///
/// Spaces around keys, operators and values are allowed. Keys and values follow ``Labels``' rules. A selector
/// is never empty: one that would select every agent of every zone is refused rather than guessed at.
public struct LabelSelector: Sendable, Hashable, CustomStringConvertible {
    /// The longest selector accepted, in characters.
    public static let maximumLength = 1024

    /// One condition on an agent's labels.
    public enum Requirement: Sendable, Hashable {
        case equals(key: String, value: String)
        case notEquals(key: String, value: String)
        case exists(key: String)
        case notExists(key: String)
        case `in`(key: String, values: [String])
        case notIn(key: String, values: [String])

        /// Whether the labels satisfy the requirement.
        public func matches(_ labels: [String: String]) -> Bool {
            switch self {
            case .equals(let key, let value): labels[key] == value
            case .notEquals(let key, let value): labels[key] != value
            case .exists(let key): labels[key] != nil
            case .notExists(let key): labels[key] == nil
            case .in(let key, let values): labels[key].map(values.contains) ?? false
            case .notIn(let key, let values): labels[key].map { !values.contains($0) } ?? true
            }
        }

        /// The requirement in canonical form.
        public var text: String {
            switch self {
            case .equals(let key, let value): "\(key)=\(value)"
            case .notEquals(let key, let value): "\(key)!=\(value)"
            case .exists(let key): key
            case .notExists(let key): "!\(key)"
            case .in(let key, let values): "\(key) in (\(values.joined(separator: ",")))"
            case .notIn(let key, let values): "\(key) notin (\(values.joined(separator: ",")))"
            }
        }
    }

    /// The requirements, in the order written.
    public let requirements: [Requirement]

    /// The selector in canonical form (`env=prod,role!=db,tier in (a,b)`).
    public var description: String { requirements.map(\.text).joined(separator: ",") }

    /// Parses a selector.
    /// - Throws: ``LabelError`` with the 1-based character position of the problem.
    public init(_ text: String) throws(LabelError) {
        var parser = LabelSelectorParser(text: text)
        requirements = try parser.parse()
    }

    /// Whether an agent with these labels is selected.
    public func matches(_ labels: [String: String]) -> Bool {
        requirements.allSatisfy { $0.matches(labels) }
    }
}

/// The recursive-descent parser behind ``LabelSelector/init(_:)``.
struct LabelSelectorParser {
    private let chars: [Character]
    private var index = 0

    init(text: String) {
        chars = Array(text)
    }

    mutating func parse() throws(LabelError) -> [LabelSelector.Requirement] {
        guard chars.count <= LabelSelector.maximumLength else {
            throw LabelError(position: LabelSelector.maximumLength + 1, message: "the selector is longer than \(LabelSelector.maximumLength) characters")
        }
        skipSpaces()
        guard index < chars.count else { throw LabelError(position: 1, message: "the selector is empty") }
        var requirements: [LabelSelector.Requirement] = []
        while true {
            requirements.append(try requirement())
            skipSpaces()
            guard index < chars.count else { return requirements }
            guard chars[index] == "," else { throw error("expected \",\" between requirements, found \"\(chars[index])\"") }
            index += 1
            skipSpaces()
            guard index < chars.count else { throw LabelError(position: index, message: "the selector ends with a comma") }
        }
    }

    private mutating func requirement() throws(LabelError) -> LabelSelector.Requirement {
        if chars[index] == "!" {
            index += 1
            skipSpaces()
            return .notExists(key: try key())
        }
        let key = try key()
        skipSpaces()
        guard index < chars.count, chars[index] != "," else { return .exists(key: key) }
        switch chars[index] {
        case "=":
            index += 1
            if index < chars.count, chars[index] == "=" { index += 1 }
            return .equals(key: key, value: try value())
        case "!":
            guard index + 1 < chars.count, chars[index + 1] == "=" else { throw error("expected \"!=\"") }
            index += 2
            return .notEquals(key: key, value: try value())
        default:
            let start = index
            while index < chars.count, chars[index].isLetter { index += 1 }
            let word = String(chars[start..<index])
            guard word == "in" || word == "notin" else {
                throw LabelError(position: start + 1, message: "expected an operator (=, ==, !=, in, notin), \",\" or the end, found \"\(chars[start])\"")
            }
            let values = try valueSet()
            return word == "in" ? .in(key: key, values: values) : .notIn(key: key, values: values)
        }
    }

    /// `( value, value … )`, at least one value.
    private mutating func valueSet() throws(LabelError) -> [String] {
        skipSpaces()
        guard index < chars.count, chars[index] == "(" else { throw error("expected \"(\" to open the list of values") }
        index += 1
        skipSpaces()
        if index < chars.count, chars[index] == ")" { throw error("the list of values is empty") }
        var values: [String] = []
        while true {
            let value = try value()
            if !values.contains(value) { values.append(value) }
            skipSpaces()
            guard index < chars.count else { throw error("expected \")\" to close the list of values") }
            if chars[index] == ")" {
                index += 1
                return values
            }
            guard chars[index] == "," else { throw error("expected \",\" or \")\" in the list of values") }
            index += 1
        }
    }

    private mutating func key() throws(LabelError) -> String {
        let start = index
        while index < chars.count, isKeyCharacter(chars[index]) { index += 1 }
        let key = String(chars[start..<index])
        guard !key.isEmpty else { throw error("expected a label key") }
        if let problem = Labels.keyProblem(key) { throw LabelError(position: start + 1, message: "label key \"\(key)\": \(problem)") }
        return key
    }

    /// A value; may be empty (`key=`), as in Kubernetes.
    private mutating func value() throws(LabelError) -> String {
        skipSpaces()
        let start = index
        while index < chars.count, isKeyCharacter(chars[index]), chars[index] != "/" { index += 1 }
        let value = String(chars[start..<index])
        if let problem = Labels.valueProblem(value) { throw LabelError(position: start + 1, message: "label value \"\(value)\": \(problem)") }
        if index < chars.count, !chars[index].isWhitespace, ![",", ")"].contains(chars[index]) {
            throw error("unexpected character \"\(chars[index])\" in a label value")
        }
        return value
    }

    private func isKeyCharacter(_ c: Character) -> Bool {
        c.isASCII && (c.isLetter || c.isNumber || c == "-" || c == "_" || c == "." || c == "/")
    }

    private mutating func skipSpaces() {
        while index < chars.count, chars[index] == " " || chars[index] == "\t" { index += 1 }
    }

    private func error(_ message: String) -> LabelError {
        LabelError(position: index + 1, message: message)
    }
}
