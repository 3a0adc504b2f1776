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
    /// The head of the request being handled, for the rare handler that reads a header as it was sent
    /// (the generated input fills in defaults for absent ones).
    @TaskLocal static var head: HTTPRequest?
}

struct RequestScopeMiddleware: RouterMiddleware {
    typealias Context = KlevrRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        try await RequestScope.$context.withValue(context) {
            try await RequestScope.$head.withValue(request.head) { try await next(request, context) }
        }
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
        if error.operationOutput != nil && (400..<500).contains(error.httpStatus.code) {
            // The handler answered, in a media type the request's Accept header does not admit (406), or
            // the header could not be read.
            return Problem(
                error.httpStatus, type: error.httpStatus == .notAcceptable ? "not-acceptable" : "bad-request", detail: error.causeDescription)
        }
        if error.operationInput != nil { return error.underlyingError }
        switch error.underlyingError {
        case is DecodingError where error.request.method == .get || error.request.method == .delete:
            // No operation of the API has a body on these methods: a query parameter did not decode.
            return QueryParameterProblem.problem(for: error.request)
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
