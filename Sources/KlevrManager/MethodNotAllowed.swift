import HTTPTypes
import Hummingbird
import KlevrAPI

/// Answers `405 Method Not Allowed` with an `Allow` header for a method that a path of the API does
/// not have, instead of the router's 404, before credentials are checked (the methods of a path are
/// public in the document anyway).
///
/// The paths and their methods are read from the OpenAPI document, which `RouteAuthorizationTests`
/// holds equal to the routes the manager registers.
struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    /// One path of the document: its segments (`nil` for a `{parameter}`) and its methods.
    struct PathTemplate: Sendable {
        var segments: [String?]
        var allow: String
        var methods: Set<String>

        func matches(_ path: [Substring]) -> Bool {
            guard path.count == segments.count else { return false }
            for (segment, part) in zip(segments, path) {
                if let segment {
                    guard segment == part else { return false }
                } else {
                    guard !part.isEmpty else { return false }
                }
            }
            return true
        }
    }

    let templates: [PathTemplate]

    init(methodsByPath: [String: Set<String>]) {
        templates = methodsByPath.sorted { $0.key < $1.key }.map { path, methods in
            let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map { part -> String? in
                part.hasPrefix("{") && part.hasSuffix("}") ? nil : String(part)
            }
            return PathTemplate(segments: Array(segments), allow: methods.sorted().joined(separator: ", "), methods: methods)
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        let method = request.method.rawValue
        // A literal segment wins over a parameter (as in the router), so a path whose literal template
        // has the method is never refused because a parameter template lacks it.
        let matching = templates.filter { $0.matches(Array(path)) }
        guard !matching.isEmpty, !matching.contains(where: { $0.methods.contains(method) }) else {
            return try await next(request, context)
        }
        let allowed = Set(matching.flatMap(\.methods)).sorted().joined(separator: ", ")
        var problem = Problem(.methodNotAllowed, type: "method-not-allowed", detail: "\(request.uri.path) allows \(allowed)")
        problem.headers[.allow] = allowed
        throw problem
    }
}
