import Logging
import Foundation
import HTTPTypes
import Hummingbird
import KlevrAPI
import KlevrCore
import KlevrStore
import NIOCore
import OpenAPIRuntime

/// An API error, rendered as an RFC 9457 `application/problem+json` document.
public struct Problem: Error, HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var document: ProblemDocument
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, type: String, detail: String, errors: [ProblemDocument.FieldError]? = nil) {
        self.status = status
        self.document = ProblemDocument(
            type: "https://klevr.dev/problems/\(type)", title: status.reasonPhrase, status: status.code, detail: detail, errors: errors)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = self.headers
        headers[.contentType] = "application/problem+json"
        let data = (try? JSONEncoder().encode(document)) ?? Data("{}".utf8)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    // MARK: - The problems of the API

    static let unauthorized = Problem(.unauthorized, type: "unauthorized", detail: "authentication required")
    static func forbidden(_ detail: String) -> Problem { Problem(.forbidden, type: "forbidden", detail: detail) }
    static func notFound(_ detail: String) -> Problem { Problem(.notFound, type: "not-found", detail: detail) }
    static func conflict(_ detail: String) -> Problem { Problem(.conflict, type: "conflict", detail: detail) }
    static func badRequest(_ detail: String) -> Problem { Problem(.badRequest, type: "bad-request", detail: detail) }
    /// A 401 for an enrollment that is refused (wrong key, missing proof, stale statement, replay).
    static func enrollRefused(_ detail: String) -> Problem { Problem(.unauthorized, type: "enroll-refused", detail: detail) }
    /// For a user whose (generated) password must be changed before anything else; says how.
    static func passwordChangeRequired(_ username: String) -> Problem {
        Problem(
            .forbidden, type: "password-change-required",
            detail: "the password of user '\(username)' must be changed before anything else: "
                + "POST /api/v1/me/password with currentPassword and newPassword, or run 'klevr user passwd'")
    }
    static func invalid(_ errors: [ProblemDocument.FieldError]) -> Problem {
        Problem(
            .unprocessableContent, type: "validation", detail: errors.map { "\($0.field): \($0.message)" }.joined(separator: "; "),
            errors: errors)
    }
    static func invalid(_ field: String, _ message: String) -> Problem { invalid([.init(field: field, message: message)]) }
    static func tooLarge(_ limit: Int) -> Problem {
        Problem(.contentTooLarge, type: "too-large", detail: "the request body is larger than \(limit) bytes")
    }

    /// Maps a storage error to its problem.
    static func from(_ error: StoreError) -> Problem {
        switch error {
        case .notFound(let message): notFound(message)
        case .conflict(let message): conflict(message)
        case .invalidInput(let message): badRequest(message)
        case .unavailable(let message): Problem(.serviceUnavailable, type: "unavailable", detail: message)
        case .staleEpoch(let message): Problem(.conflict, type: "stale-epoch", detail: message)
        case .corrupt(let message): Problem(.internalServerError, type: "corrupt-data", detail: message)
        }
    }
}

/// Turns storage errors into problems and makes sure no other error leaks its text to a client.
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as ServerError {
            // A generated handler's error: what the request's decoding or the handler threw.
            throw problem(for: Problem.from(error), context: context)
        } catch {
            throw problem(for: error, context: context)
        }
    }

    private func problem(for error: any Error, context: Context) -> any Error {
        switch error {
        case let error as StoreError:
            return Problem.from(error)
        case let error as ServiceError:
            switch error {
            case .invalid(let fields): return Problem.invalid(fields)
            case .notFound(let message): return Problem.notFound(message)
            case .conflict(let message): return Problem.conflict(message)
            }
        case let problem as Problem:
            return problem
        case let error as any HTTPResponseError:
            // Hummingbird's own errors (404 for an unknown route, 405 ...) become problems too.
            return Problem(error.status, type: "http-\(error.status.code)", detail: error.status.reasonPhrase)
        case is CancellationError:
            return Problem(.serviceUnavailable, type: "unavailable", detail: "the manager is shutting down")
        default:
            context.logger.error(
                "internal error",
                metadata: ["error.type": "\(String(reflecting: type(of: error)))", "error": "\(DatabaseErrors.describe(error))"])
            return Problem(.internalServerError, type: "internal", detail: "internal error; see the manager's log")
        }
    }
}
