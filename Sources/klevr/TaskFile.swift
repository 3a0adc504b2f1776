import ArgumentParser
import Foundation
import KlevrAPI
import Yams

/// A task file: the API's `TaskCreateRequest` written as YAML (or JSON, which is YAML too), with the
/// document's field names. It is read whole, converted to JSON and decoded with the API's own type, so
/// the file takes exactly what the API takes; the manager validates it like any request.
enum TaskFile {
    /// The largest task file read (the API refuses larger bodies anyway).
    static let maximumBytes = 1 << 20

    /// Reads `path` (`-` for standard input) and returns the request it describes.
    static func load(_ path: String) throws -> Components.Schemas.TaskCreateRequest {
        let data: Data
        if path == "-" {
            data = FileHandle.standardInput.readData(ofLength: maximumBytes + 1)
        } else {
            guard let contents = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
            data = contents
        }
        guard data.count <= maximumBytes else { throw ValidationError("\(path) is larger than \(maximumBytes / 1024) KiB") }
        guard let text = String(data: data, encoding: .utf8) else { throw ValidationError("\(path) is not UTF-8 text") }
        return try parse(text, name: path)
    }

    /// The request `text` describes.
    static func parse(_ text: String, name: String) throws -> Components.Schemas.TaskCreateRequest {
        let value: Any?
        do {
            value = try Yams.load(yaml: text)
        } catch {
            throw ValidationError("\(name) is not valid YAML: \(error)")
        }
        guard let object = value as? [String: Any] else { throw ValidationError("\(name) must be a mapping of task fields (zone, target, steps, …)") }
        let json: Data
        do {
            json = try JSONSerialization.data(withJSONObject: jsonCompatible(object), options: [.sortedKeys])
        } catch {
            throw ValidationError("\(name) holds a value JSON cannot represent: \(error)")
        }
        let request: Components.Schemas.TaskCreateRequest
        do {
            request = try JSONDecoder().decode(Components.Schemas.TaskCreateRequest.self, from: json)
        } catch let error as DecodingError {
            throw ValidationError("\(name): \(describe(error))")
        }
        // A misspelt field is an error, not ignored: every field given must survive the round trip.
        let kept = (try? JSONSerialization.jsonObject(with: try JSONEncoder().encode(request))) as? [String: Any] ?? [:]
        let unknown = object.filter { !($0.value is NSNull) && kept[$0.key] == nil }.keys.sorted()
        if !unknown.isEmpty { throw ValidationError("\(name): unknown field(s) \(unknown.joined(separator: ", "))") }
        return request
    }

    /// YAML's values as JSONSerialization takes them (YAML dates and other scalars become text).
    static func jsonCompatible(_ value: Any) -> Any {
        switch value {
        case let map as [String: Any]: return map.mapValues(jsonCompatible)
        case let map as [AnyHashable: Any]: return Dictionary(uniqueKeysWithValues: map.map { ("\($0.key)", jsonCompatible($0.value)) })
        case let list as [Any]: return list.map(jsonCompatible)
        case is String, is Int, is Double, is Bool, is NSNull: return value
        case let date as Date: return ISO8601DateFormatter().string(from: date)
        default: return "\(value)"
        }
    }

    /// A decoding error as a field path and what is wrong.
    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
        }
        switch error {
        case .keyNotFound(let key, let context): return "\(path(context.codingPath + [key])) is required"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "\(path(context.codingPath).isEmpty ? "the file" : path(context.codingPath)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}
