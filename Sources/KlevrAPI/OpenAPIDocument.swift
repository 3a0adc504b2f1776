import Foundation

/// The API contract, `openapi.yaml`, shipped as a resource and served at `/api/v1/openapi.yaml`.
public enum OpenAPIDocument {
    /// The document's text, or nil when the resource is missing from the build.
    public static func text() -> String? {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml") else { return nil }
        return try? String(contentsOf: url, encoding: .utf8)
    }
}
