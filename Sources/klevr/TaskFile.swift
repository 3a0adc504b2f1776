import ArgumentParser
import Foundation
import KlevrAPI
import KlevrManager

/// A task file: the API's `TaskCreateRequest` written as YAML (or JSON, which is YAML too), with the
/// document's field names. It is read whole and converted by ``TaskYAML`` (the manager's own conversion
/// of YAML request bodies), so the file takes exactly what the API takes; the manager validates it
/// like any request.
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

    /// The request `text` describes (the conversion is the manager's, shared with
    /// `POST /api/v1/tasks` in YAML: ``TaskYAML``).
    static func parse(_ text: String, name: String) throws -> Components.Schemas.TaskCreateRequest {
        do {
            return try TaskYAML.request(from: text)
        } catch {
            throw ValidationError("\(name)\(error.followsAColon ? ": " : " ")\(error.message)")
        }
    }
}

extension TaskYAML.Failure {
    /// Whether the message starts with a field path (then it follows a colon).
    fileprivate var followsAColon: Bool {
        if case .undecodable = self { return true }
        if case .unknownFields = self { return true }
        return false
    }
}
