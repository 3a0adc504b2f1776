import Foundation
import KlevrCore

/// The API contract, `openapi.yaml`, shipped as a resource and served at `/api/v1/openapi.yaml`.
public enum OpenAPIDocument {
    /// The name of this target's resource folder, which holds the document.
    public static let resourceBundle = "klevr_KlevrAPI"

    /// The document's text, or nil when the resource folder is missing (see ``ResourceBundle``).
    public static func text() -> String? {
        guard let url = ResourceBundle.named(resourceBundle)?.url(forResource: "openapi", withExtension: "yaml") else { return nil }
        return try? String(contentsOf: url, encoding: .utf8)
    }

    /// One operation of the document: its method, path template, id and the role it needs.
    public struct Operation: Sendable, Equatable, CustomStringConvertible {
        public var method: String
        public var path: String
        public var operationID: String
        /// `public`, `viewer`, `operator`, `admin` or `agent` (`x-klevr-role`).
        public var role: String

        public var description: String { "\(method) \(path) [\(operationID), \(role)]" }

        public init(method: String, path: String, operationID: String, role: String) {
            self.method = method
            self.path = path
            self.operationID = operationID
            self.role = role
        }

        /// Whether a concrete request path matches this operation's template (`{name}` matches one
        /// non-empty segment).
        public func matches(method: String, path: String) -> Bool {
            method == self.method && Self.matches(template: self.path, path: path)
        }

        public static func matches(template: String, path: String) -> Bool {
            let wanted = template.split(separator: "/", omittingEmptySubsequences: false)
            let given = path.split(separator: "/", omittingEmptySubsequences: false)
            guard wanted.count == given.count else { return false }
            for (pattern, segment) in zip(wanted, given) {
                if pattern.hasPrefix("{") && pattern.hasSuffix("}") {
                    if segment.isEmpty { return false }
                } else if pattern != segment {
                    return false
                }
            }
            return true
        }
    }

    /// What is wrong with a document's operations.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    static let methods: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options"]
    static let roles: Set<String> = ["public", "viewer", "operator", "admin", "agent"]

    /// Reads every operation of the document's `paths` (the document is written with two-space
    /// indentation: paths at 2, methods at 4, operation fields at 6).
    /// - Throws: ``Failure`` for an operation without `operationId` or with a missing or unknown
    ///   `x-klevr-role`: the server refuses to start rather than guess a role.
    public static func operations(_ text: String) throws -> [Operation] {
        var operations: [Operation] = []
        var path: String?
        var current: (method: String, id: String?, role: String?)?
        var inPaths = false
        func close() throws {
            guard let open = current, let path else { return }
            guard let id = open.id else { throw Failure(description: "\(open.method) \(path) has no operationId") }
            guard let role = open.role else { throw Failure(description: "\(open.method) \(path) (\(id)) has no x-klevr-role") }
            guard roles.contains(role) else { throw Failure(description: "\(open.method) \(path) (\(id)) has an unknown x-klevr-role '\(role)'") }
            operations.append(Operation(method: open.method, path: path, operationID: id, role: role))
            current = nil
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "paths:" { inPaths = true; continue }
            if inPaths && !line.hasPrefix(" ") && !line.isEmpty {
                try close()
                inPaths = false
            }
            guard inPaths else { continue }
            if line.hasPrefix("  /") && line.hasSuffix(":") {
                try close()
                path = String(line.dropFirst(2).dropLast())
            } else if line.hasPrefix("    ") && !line.hasPrefix("     ") && line.hasSuffix(":") {
                try close()
                let method = String(line.dropFirst(4).dropLast())
                if methods.contains(method) { current = (method.uppercased(), nil, nil) }
            } else if line.hasPrefix("      operationId: ") {
                current?.id = String(line.dropFirst("      operationId: ".count)).trimmingCharacters(in: .whitespaces)
            } else if line.hasPrefix("      x-klevr-role: ") {
                current?.role = String(line.dropFirst("      x-klevr-role: ".count)).trimmingCharacters(in: .whitespaces)
            }
        }
        try close()
        return operations
    }

    /// The HTTP methods an OpenAPI document may list under a path.
    public static let httpMethods: Set<String> = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]

    /// The methods of each path of the document (`/api/v1/zones/{zone}` → `["DELETE", "GET"]`).
    ///
    /// Reads the layout this document is written in: a path is a key indented by two spaces under
    /// `paths:`, an operation a method key indented by four spaces under it.
    public static func methodsByPath(_ text: String) -> [String: Set<String>] {
        var result: [String: Set<String>] = [:]
        var inPaths = false
        var path: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" ") && !line.isEmpty {
                inPaths = line == "paths:"
                path = nil
                continue
            }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), !line.hasPrefix("   "), line.hasSuffix(":") {
                let key = String(line.dropFirst(2).dropLast())
                path = key
                result[key, default: []] = result[key, default: []]
            } else if let current = path, line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":") {
                let key = String(line.dropFirst(4).dropLast())
                if httpMethods.contains(key) { result[current, default: []].insert(key.uppercased()) }
            }
        }
        return result
    }
}
