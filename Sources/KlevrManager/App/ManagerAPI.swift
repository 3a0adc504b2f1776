import Foundation
import HTTPTypes
import Hummingbird
import KlevrAPI
import KlevrStore
import OpenAPIHummingbird
import OpenAPIRuntime

/// The manager's implementation of the API generated from `openapi.yaml` (`APIProtocol`).
///
/// Each feature folder implements its operations in an extension of this type
/// (`Zones/ManagerAPI+Zones.swift`, ...): decode nothing by hand, authorize nothing by hand (the
/// ``Authorizer`` middleware does both from the document), call the feature's store or service, and
/// return the generated output. Errors are thrown and become problem documents in
/// ``ProblemMiddleware``.
struct ManagerAPI: APIProtocol {
    let manager: Manager

    /// The operations served by their generated handlers (each feature lists its own), one per line.
    static let generatedOperations: Set<String> = Set(
        [
            serviceOperations,
            sessionOperations,
            userOperations,
            tokenOperations,
            eventOperations,
            zoneOperations
        ].joined())

    var store: Store { manager.store }
    var config: ManagerConfig { manager.config }

    /// The Hummingbird context of the request being handled: who calls, from where.
    var context: KlevrRequestContext {
        get throws {
            guard let context = RequestScope.context else {
                throw Problem(.internalServerError, type: "internal", detail: "internal error; see the manager's log")
            }
            return context
        }
    }
}

/// The request context of the call being handled, for the generated handlers (which receive only the
/// operation's input). Set by ``RequestScopeMiddleware``, the last middleware before the handlers.
enum RequestScope {
    @TaskLocal static var context: KlevrRequestContext?
}

struct RequestScopeMiddleware: RouterMiddleware {
    typealias Context = KlevrRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        try await RequestScope.$context.withValue(context) { try await next(request, context) }
    }
}

/// Registers on the router only the generated handlers of the operations listed, so that the
/// operations can move to the generated server one feature at a time; the others keep their
/// hand-written routes until they move.
struct SelectedOperations: ServerTransport {
    let router: Router<KlevrRequestContext>
    /// `METHOD /path/{template}` of each operation served by its generated handler.
    let operations: Set<String>

    func register(
        _ handler: @Sendable @escaping (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?),
        method: HTTPRequest.Method, path: String
    ) throws {
        guard operations.contains("\(method.rawValue) \(path)") else { return }
        router.register(handler, method: method, path: path)
    }
}

/// Reads a request's body up to its operation's limit before any handler sees it: more is a 413.
///
/// The generated handlers read bodies without a limit of their own, so this is where the API's limits
/// live: 4 KiB for a login (a name and a password), 16 MiB for an agent's sync, 1 MiB for the rest.
/// It runs after authentication, so an anonymous caller cannot make the manager read a large body.
struct BodyLimitMiddleware: RouterMiddleware {
    typealias Context = KlevrRequestContext

    static func limit(method: HTTPRequest.Method, path: String) -> Int {
        switch (method, path) {
        case (.post, "/api/v1/auth/login"): JSONBody.loginLimit
        case (.post, "/api/v1/agent/sync"): JSONBody.syncLimit
        default: JSONBody.apiLimit
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method != .get, request.method != .head else { return try await next(request, context) }
        let limit = Self.limit(method: request.method, path: request.uri.path)
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit { throw Problem.tooLarge(limit) }
        var request = request
        do {
            _ = try await request.collectBody(upTo: limit)
        } catch {
            throw Problem.tooLarge(limit)
        }
        return try await next(request, context)
    }
}

extension Problem {
    /// The problem for an error thrown by a generated handler: a request the generated code could
    /// not decode (no operation input yet) is the client's fault, the rest is mapped as for any route.
    static func from(_ error: ServerError) -> any Error {
        if error.operationOutput != nil, (400..<500).contains(error.httpStatus.code) {
            // The handler answered, in a content type that the request's Accept header refuses.
            return Problem(error.httpStatus, type: "not-acceptable", detail: error.causeDescription)
        }
        if error.operationInput != nil { return error.underlyingError }
        switch error.underlyingError {
        case let decoding as DecodingError:
            return JSONBody.problem(for: decoding)
        case let problem as Problem:
            return problem
        default:
            // The runtime's own refusals (a missing body, an unexpected content type ...) carry a 4xx.
            let status = (400..<500).contains(error.httpStatus.code) ? error.httpStatus : .badRequest
            return Problem(status, type: "bad-request", detail: error.causeDescription)
        }
    }
}
