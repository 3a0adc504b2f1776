/// Why a label or a label selector was refused.
///
/// `position` is the 1-based character position in the parsed text (`--labels` or a selector), or nil when
/// the labels came as a map (the message names the key then).
public struct LabelError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Where in the text the problem is (1-based, in characters), when there is a text.
    public var position: Int?
    /// What is wrong.
    public var message: String

    /// Creates an error.
    public init(position: Int?, message: String) {
        self.position = position
        self.message = message
    }

    /// For example `position 5: a label key ...`.
    public var description: String { position.map { "position \($0): \(message)" } ?? message }
}

/// An agent's labels: `key=value` pairs with Kubernetes' label syntax.
///
/// - A key is `[prefix/]name`. The name is 1–63 characters of letters, digits, `-`, `_` and `.`, starting and
///   ending with a letter or digit. The optional prefix is a DNS subdomain: at most 253 characters of lowercase
///   letters, digits, `-` and `.`, starting and ending with a letter or digit (`klevr.io/rack`).
/// - A value is empty or 1–63 characters with the same rule as a name.
/// - An agent has at most ``maximumCount`` labels.
public struct Labels: Sendable, Hashable {
    /// The most labels one agent may carry.
    public static let maximumCount = 64

    /// The labels.
    public let values: [String: String]

    /// Validated labels from a map.
    /// - Throws: ``LabelError`` naming the first bad key or value (in key order).
    public init(_ values: [String: String]) throws(LabelError) {
        guard values.count <= Self.maximumCount else {
            throw LabelError(position: nil, message: "\(values.count) labels, at most \(Self.maximumCount) are allowed")
        }
        for key in values.keys.sorted() {
            if let problem = Self.keyProblem(key) { throw LabelError(position: nil, message: "label key \"\(key)\": \(problem)") }
            if let value = values[key], let problem = Self.valueProblem(value) {
                throw LabelError(position: nil, message: "value of label \"\(key)\": \(problem)")
            }
        }
        self.values = values
    }

    /// Parses `key=value,key=value` (the agent's `--labels`); spaces around items are ignored; a key given twice
    /// is an error. An empty text is no labels.
    /// - Throws: ``LabelError`` with the position of the problem.
    public init(parsing text: String) throws(LabelError) {
        let chars = Array(text)
        var values: [String: String] = [:]
        var index = 0
        while index < chars.count {
            var end = index
            while end < chars.count, chars[end] != "," { end += 1 }
            var start = index
            var stop = end
            while start < stop, chars[start] == " " { start += 1 }
            while stop > start, chars[stop - 1] == " " { stop -= 1 }
            guard start < stop else { throw LabelError(position: index + 1, message: "empty label (expected key=value)") }
            guard let equals = chars[start..<stop].firstIndex(of: "=") else {
                throw LabelError(position: start + 1, message: "expected key=value, found \"\(String(chars[start..<stop]))\"")
            }
            let key = String(chars[start..<equals])
            let value = String(chars[(equals + 1)..<stop])
            if let problem = Self.keyProblem(key) { throw LabelError(position: start + 1, message: "label key \"\(key)\": \(problem)") }
            if let problem = Self.valueProblem(value) {
                throw LabelError(position: equals + 2, message: "value of label \"\(key)\": \(problem)")
            }
            guard values[key] == nil else { throw LabelError(position: start + 1, message: "label \"\(key)\" is given twice") }
            values[key] = value
            index = end + 1
            if end < chars.count, index == chars.count { throw LabelError(position: end + 1, message: "the list ends with a comma") }
        }
        try self.init(values)
    }

    /// What is wrong with a key, or nil if it is valid.
    public static func keyProblem(_ key: String) -> String? {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { return "a key has at most one \"/\" (prefix/name)" }
        if parts.count == 2 {
            let prefix = parts[0]
            guard !prefix.isEmpty, prefix.count <= 253 else { return "the prefix must be 1 to 253 characters" }
            guard prefix.unicodeScalars.allSatisfy({ isLowerAlnum($0) || $0 == "-" || $0 == "." }),
                let first = prefix.unicodeScalars.first, let last = prefix.unicodeScalars.last, isLowerAlnum(first), isLowerAlnum(last)
            else { return "the prefix must be a DNS subdomain (lowercase letters, digits, \"-\" and \".\", starting and ending with a letter or digit)" }
        }
        let name = parts[parts.count - 1]
        guard !name.isEmpty else { return "the name must not be empty" }
        return nameProblem(name, what: "the name")
    }

    /// What is wrong with a value, or nil if it is valid (the empty value is valid).
    public static func valueProblem(_ value: String) -> String? {
        value.isEmpty ? nil : nameProblem(Substring(value), what: "a value")
    }

    private static func nameProblem(_ name: Substring, what: String) -> String? {
        guard name.unicodeScalars.count <= 63 else { return "\(what) must be at most 63 characters" }
        guard name.unicodeScalars.allSatisfy({ isAlnum($0) || $0 == "-" || $0 == "_" || $0 == "." }),
            let first = name.unicodeScalars.first, let last = name.unicodeScalars.last, isAlnum(first), isAlnum(last)
        else { return "\(what) may contain letters, digits, \"-\", \"_\" and \".\", and must start and end with a letter or digit" }
        return nil
    }

    static func isAlnum(_ s: Unicode.Scalar) -> Bool { isLowerAlnum(s) || ("A"..."Z").contains(s) }
    static func isLowerAlnum(_ s: Unicode.Scalar) -> Bool { ("a"..."z").contains(s) || ("0"..."9").contains(s) }
}
