import Foundation

/// The API contract, `openapi.yaml`, shipped as a resource and served at `/api/v1/openapi.yaml`.
public enum OpenAPIDocument {
    /// The document's text, or nil when the resource is missing from the build.
    public static func text() -> String? {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml") else { return nil }
        return try? String(contentsOf: url, encoding: .utf8)
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
