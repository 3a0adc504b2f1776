import Foundation
import KlevrAPI
import Yams

/// A task written as YAML (or JSON, which is YAML too): the API's `TaskCreateRequest` with the
/// document's field names. The text is converted to JSON and decoded with the API's own type, so YAML
/// takes exactly what JSON takes. Used by `POST /api/v1/tasks` with `Content-Type: application/yaml`
/// and by the CLI's `klevr task create -f`; the manager then validates the request like any other.
public enum TaskYAML {
    /// Why a text is not a task request.
    public enum Failure: Error, Sendable {
        /// Not YAML at all (the parser's message).
        case malformed(String)
        /// YAML, but not a mapping of task fields.
        case notMapping
        /// A value JSON cannot represent (the message).
        case unrepresentable(String)
        /// A field of the wrong type or a missing one (``TaskYAML/describe(_:)`` names it).
        case undecodable(DecodingError)
        /// Fields the request does not have (a misspelling), sorted.
        case unknownFields([String])
        /// More values or deeper nesting than a task can have (aliases can repeat a part many times).
        case tooLarge

        /// One line naming the problem, after what was read ("task.yaml is not valid YAML: …",
        /// "task.yaml: steps[0].script: …").
        public var message: String {
            switch self {
            case .malformed(let detail): "is not valid YAML: \(detail)"
            case .notMapping: "must be a mapping of task fields (zone, target, steps, …)"
            case .unrepresentable(let detail): "holds a value JSON cannot represent: \(detail)"
            case .undecodable(let error): TaskYAML.describe(error)
            case .unknownFields(let names): "unknown field(s) \(names.joined(separator: ", "))"
            case .tooLarge:
                "holds more than \(TaskYAML.maximumValues) values or is nested deeper than \(TaskYAML.maximumDepth) (aliases count each time they repeat what they name)"
            }
        }
    }

    /// The top-level fields of a `TaskCreateRequest` (TaskYAMLBodyTests checks them against the type).
    public static let fields: Set<String> = [
        "name", "zone", "target", "steps", "params", "timeoutSeconds", "runAt", "deliverWithinSeconds", "schedule", "rollout",
        "credentials", "recover", "callbackUrl",
    ]

    /// The request `text` describes.
    public static func request(from text: String) throws(Failure) -> Components.Schemas.TaskCreateRequest {
        // Aliases share what they name in the composed tree, but constructing values would copy each
        // repetition: a small text with nested aliases ("billion laughs") would take the manager's memory
        // and time. So the tree is counted first (stopping as soon as it is too big), and only a tree
        // that fits is constructed. Unbalanced flow brackets are counted before parsing, since the
        // parser descends once per level.
        guard !flowNestingExceeds(text, limit: maximumFlowNesting) else { throw .tooLarge }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw .malformed("\(error)")
        }
        guard let node else { throw .notMapping }
        var budget = maximumValues
        guard fits(node, depth: 0, budget: &budget) else { throw .tooLarge }
        let value = node.any
        guard let object = value as? [String: Any] else { throw .notMapping }
        let json: Data
        do {
            json = try JSONSerialization.data(withJSONObject: jsonCompatible(object), options: [.sortedKeys])
        } catch {
            throw .unrepresentable("\(error)")
        }
        let request: Components.Schemas.TaskCreateRequest
        do {
            request = try JSONDecoder().decode(Components.Schemas.TaskCreateRequest.self, from: json)
        } catch let error as DecodingError {
            throw .undecodable(error)
        } catch {
            throw .unrepresentable("\(error)")
        }
        // A misspelt field is an error, not ignored (also with a null value): every field given is one of
        // the request's, or survives the round trip (a field added to the document and not to `fields`).
        let kept = (try? JSONEncoder().encode(request)).flatMap { try? JSONSerialization.jsonObject(with: $0) } as? [String: Any] ?? [:]
        let unknown = object.keys.filter { !fields.contains($0) && kept[$0] == nil }.sorted()
        if !unknown.isEmpty { throw .unknownFields(unknown) }
        return request
    }

    /// At most this many values (scalars, lists and mappings) in a task, aliases counted each time.
    public static let maximumValues = 100_000
    /// At most this deep (a task's deepest field is a few levels down).
    public static let maximumDepth = 64

    /// Unbalanced `[`/`{` allowed before parsing (quotes are not told apart: a script's brackets count too,
    /// which only matters past a thousand open ones).
    static let maximumFlowNesting = 1_000

    static func flowNestingExceeds(_ text: String, limit: Int) -> Bool {
        var depth = 0
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > limit { return true }
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                depth = max(0, depth - 1)
            default:
                break
            }
        }
        return false
    }

    /// Whether `node` has at most `budget` nodes (aliases counted each time they appear) and
    /// `maximumDepth` levels; stops as soon as it has too many, so a huge expansion is never walked.
    static func fits(_ node: Node, depth: Int, budget: inout Int) -> Bool {
        budget -= 1
        guard budget >= 0, depth <= maximumDepth else { return false }
        switch node {
        case .scalar: return true
        case .sequence(let sequence): return sequence.allSatisfy { fits($0, depth: depth + 1, budget: &budget) }
        case .mapping(let mapping):
            return mapping.allSatisfy { fits($0.key, depth: depth + 1, budget: &budget) && fits($0.value, depth: depth + 1, budget: &budget) }
        case .alias:
            return false
        }
    }

    /// YAML's values as JSONSerialization takes them (YAML dates and other scalars become text).
    static func jsonCompatible(_ value: Any) -> Any {
        switch value {
        case let map as [String: Any]: return map.mapValues(jsonCompatible)
        case let map as [AnyHashable: Any]: return Dictionary(map.map { ("\($0.key)", jsonCompatible($0.value)) }, uniquingKeysWith: { first, _ in first })
        case let list as [Any]: return list.map(jsonCompatible)
        case let double as Double where !double.isFinite: return "\(double)"
        case is String, is Int, is Double, is Bool, is NSNull: return value
        case let date as Date: return ISO8601DateFormatter().string(from: date)
        case let data as Data: return data.base64EncodedString()
        default: return "\(value)"
        }
    }

    /// A decoding error as a field path (`steps[0].script`) and what is wrong.
    public static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
        }
        switch error {
        case .keyNotFound(let key, let context): return "\(path(context.codingPath + [key])) is required"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "\(path(context.codingPath).isEmpty ? "the document" : path(context.codingPath)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}
