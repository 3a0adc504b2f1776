import Logging
import Foundation
import HTTPTypes
import Hummingbird
import KlevrAPI
import NIOCore
import NIOFoundationCompat

/// Reading JSON request bodies and writing JSON responses, with the API's error rules: an oversized
/// body is a 413, malformed JSON a 400, a field of the wrong type or a missing field a 422 naming it.
enum JSONBody {
    static let apiLimit = 1 << 20
    static let syncLimit = 16 << 20
    /// A login is a user name and a password: a few hundred bytes. Anything larger is refused with a 413
    /// before it is decoded, so that huge names cost neither memory nor a database lookup.
    static let loginLimit = 4 << 10

    static func decode<T: Decodable>(_ type: T.Type, from request: Request, limit: Int = apiLimit) async throws -> T {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: limit)
        } catch {
            throw Problem.tooLarge(limit)
        }
        let data = Data(buffer: buffer)
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let error as DecodingError {
            throw problem(for: error)
        } catch {
            throw Problem.badRequest("the body is not valid JSON")
        }
    }

    static func problem(for error: DecodingError) -> Problem {
        func path(_ codingPath: [any CodingKey], _ key: (any CodingKey)? = nil) -> String {
            let keys = codingPath + (key.map { [$0] } ?? [])
            let text = keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return text.isEmpty ? "body" : text.replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            return Problem.badRequest("the body is not valid JSON")
        case .dataCorrupted(let context):
            return Problem.invalid(path(context.codingPath), "invalid value")
        case .keyNotFound(let key, let context):
            return Problem.invalid(path(context.codingPath, key), "is required")
        case .typeMismatch(let type, let context):
            return Problem.invalid(path(context.codingPath), "must be \(describe(type))")
        case .valueNotFound(let type, let context) where context.underlyingError != nil:
            // A generated `oneOf` that none of its branches decodes (the errors of each are underneath):
            // the value has the wrong shape, null or not.
            return Problem.invalid(path(context.codingPath), "must be \(describe(type))")
        case .valueNotFound(let type, let context):
            return Problem.invalid(path(context.codingPath), "must be \(describe(type)), not null")
        @unknown default:
            return Problem.badRequest("the body could not be read")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int64.Type: "an integer"
        case is Bool.Type: "a boolean"
        case is Double.Type: "a number"
        default: type is any Collection.Type ? "an array" : "an object or a value of the documented type"
        }
    }

    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        let data = try JSONEncoder().encode(value)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}
