import Foundation

/// The names of the built-in commands a step can run instead of a script (SPEC §4, docs/tasks.md).
public enum BuiltinCommandName: String, CaseIterable, Sendable, Codable {
    case agentInfo = "agent.info"
    case agentSetLogLevel = "agent.set-log-level"
    case agentCollectLogs = "agent.collect-logs"
    case agentRunningRuns = "agent.running-runs"
    case runStop = "run.stop"
    case agentRestart = "agent.restart"
    case agentShutdown = "agent.shutdown"
    case filePut = "file.put"
    case fileGet = "file.get"
    case hostFacts = "host.facts"
}

/// One parameter of a built-in command: what the manager checks at task creation and what the
/// parameter schema served at `GET /api/v1/commands` says.
public struct CommandParameter: Sendable {
    /// The kinds of value a parameter takes.
    public enum Kind: Sendable {
        /// A string of at most `maxLength` characters, one of `allowed` when given.
        case string(maxLength: Int, allowed: [String]? = nil)
        /// An integer from `min` to `max`.
        case integer(min: Int64, max: Int64)
        /// An absolute path without `..` components or NUL, at most 4096 bytes.
        case absolutePath
        /// Standard base64 of at most `maxBytes` decoded bytes.
        case base64(maxBytes: Int)
        /// A file mode as octal digits (`"0644"`, `"600"`), at most 07777.
        case fileMode
        /// A run id.
        case runID
    }

    public var name: String
    public var kind: Kind
    public var required: Bool
    public var defaultValue: JSONValue?
    public var description: String

    public init(_ name: String, _ kind: Kind, required: Bool = false, default defaultValue: JSONValue? = nil, _ description: String) {
        self.name = name
        self.kind = kind
        self.required = required
        self.defaultValue = defaultValue
        self.description = description
    }

    /// This parameter as a JSON schema.
    var schema: JSONValue {
        var node: [String: JSONValue] = ["description": .string(description)]
        switch kind {
        case .string(let maxLength, let allowed):
            node["type"] = "string"
            node["maxLength"] = .integer(Int64(maxLength))
            if let allowed { node["enum"] = .array(allowed.map { .string($0) }) }
        case .integer(let min, let max):
            node["type"] = "integer"
            node["minimum"] = .integer(min)
            node["maximum"] = .integer(max)
        case .absolutePath:
            node["type"] = "string"
            node["maxLength"] = 4096
            node["pattern"] = "^/"
        case .base64(let maxBytes):
            node["type"] = "string"
            node["contentEncoding"] = "base64"
            node["maxLength"] = .integer(Int64((maxBytes + 2) / 3 * 4))
        case .fileMode:
            node["type"] = "string"
            node["pattern"] = "^0?[0-7]{3,4}$"
        case .runID:
            node["type"] = "string"
            node["pattern"] = "^[A-Za-z0-9_-]{1,64}$"
        }
        if let defaultValue { node["default"] = defaultValue }
        return .object(node)
    }

    /// What is wrong with `value`, or nil.
    func problem(with value: JSONValue) -> String? {
        switch kind {
        case .string(let maxLength, let allowed):
            guard let text = value.stringValue else { return "must be a string" }
            if text.unicodeScalars.count > maxLength { return "at most \(maxLength) characters" }
            if let allowed, !allowed.contains(text) { return "must be one of \(allowed.joined(separator: ", "))" }
        case .integer(let min, let max):
            guard let number = value.integerValue else { return "must be an integer" }
            if !(min...max).contains(number) { return "must be from \(min) to \(max)" }
        case .absolutePath:
            guard let path = value.stringValue else { return "must be a string" }
            if let problem = BuiltinCommand.pathProblem(path) { return problem }
        case .base64(let maxBytes):
            guard let text = value.stringValue else { return "must be a string" }
            guard let data = Data(base64Encoded: text) else { return "must be standard base64" }
            if data.count > maxBytes { return "decodes to \(data.count) bytes; at most \(maxBytes)" }
        case .fileMode:
            guard let text = value.stringValue else { return "must be a string of octal digits like \"0644\"" }
            if BuiltinCommand.fileMode(text) == nil { return "must be octal digits from 000 to 7777, like \"0644\"" }
        case .runID:
            guard let text = value.stringValue else { return "must be a string" }
            if !Validation.isValidID(text) { return "is not a run id" }
        }
        return nil
    }
}

/// A field of a step's `args` that is wrong, named relative to `args`.
public struct CommandArgumentProblem: Sendable, Equatable, CustomStringConvertible {
    /// The parameter's name, or empty for `args` as a whole.
    public var field: String
    public var message: String
    public var description: String { field.isEmpty ? message : "\(field): \(message)" }
}

/// A built-in command: its name, what it does, its parameters (checked by the manager when a task is
/// created, and again by the agent) and the schema of its JSON result.
public struct BuiltinCommand: Sendable {
    public var name: BuiltinCommandName
    public var description: String
    public var parameters: [CommandParameter]
    /// The JSON schema of the step's result (`$KLEVR_PREVIOUS_RESULT_FILE` of the next step).
    public var resultSchema: JSONValue

    /// The JSON schema of `args`: an object of the parameters, no others.
    public var parameterSchema: JSONValue {
        var properties: [String: JSONValue] = [:]
        for parameter in parameters { properties[parameter.name] = parameter.schema }
        return [
            "type": "object", "additionalProperties": false, "properties": .object(properties),
            "required": .array(parameters.filter(\.required).map { .string($0.name) }),
        ]
    }

    /// What is wrong with `args` (nil counts as `{}`); empty when they are right.
    public func problems(with args: JSONValue?) -> [CommandArgumentProblem] {
        let object: [String: JSONValue]
        switch args {
        case nil, .null?: object = [:]
        case .object(let value)?: object = value
        default: return [CommandArgumentProblem(field: "", message: "must be a JSON object")]
        }
        var problems: [CommandArgumentProblem] = []
        let known = Set(parameters.map(\.name))
        for name in object.keys.sorted() where !known.contains(name) {
            problems.append(.init(field: name, message: "is not a parameter of \(self.name.rawValue)"))
        }
        for parameter in parameters {
            guard let value = object[parameter.name], value != .null else {
                if parameter.required { problems.append(.init(field: parameter.name, message: "is required")) }
                continue
            }
            if let problem = parameter.problem(with: value) { problems.append(.init(field: parameter.name, message: problem)) }
        }
        return problems
    }

    /// The arguments with the defaults filled in (call after ``problems(with:)`` found none).
    public func arguments(_ args: JSONValue?) -> [String: JSONValue] {
        var object: [String: JSONValue] = [:]
        if case .object(let value)? = args { object = value.filter { $0.value != .null } }
        for parameter in parameters where object[parameter.name] == nil {
            if let value = parameter.defaultValue { object[parameter.name] = value }
        }
        return object
    }

    /// Why `path` is not an absolute path a file command may use, or nil.
    public static func pathProblem(_ path: String) -> String? {
        if !path.hasPrefix("/") { return "must be an absolute path" }
        if path.utf8.count > 4096 { return "at most 4096 bytes" }
        if path.unicodeScalars.contains("\0") { return "must not contain NUL" }
        if path.split(separator: "/").contains(where: { $0 == ".." }) { return "must not contain '..'" }
        if path.hasSuffix("/") { return "must name a file, not a directory" }
        return nil
    }

    /// The permission bits of an octal mode text (`"0644"`), or nil.
    public static func fileMode(_ text: String) -> UInt16? {
        guard (3...5).contains(text.count), text.allSatisfy({ ("0"..."7").contains($0) }), let value = UInt16(text, radix: 8),
            value <= 0o7777
        else { return nil }
        return value
    }
}
