import Foundation
import KlevrAPI
import OpenAPIRuntime

/// An answer of the manager that is not a success (any status outside 2xx, documented or not), with
/// the RFC 9457 problem document (`application/problem+json`) when it sent one.
public struct ManagerRefusal: Error, CustomStringConvertible, Sendable {
    /// How much of a refusal's body is read: problem documents are small, and an answer that is not
    /// one is only quoted.
    public static let bodyLimit = 64 << 10

    public var status: Int
    public var problem: Components.Schemas.Problem?
    /// The body as text (at most ``bodyLimit`` bytes of it).
    public var body: String

    public init(status: Int, problem: Components.Schemas.Problem?, body: String) {
        self.status = status
        self.problem = problem
        self.body = body
    }

    /// Reads (at most ``bodyLimit`` bytes of) the body of an answer with `status` and decodes its
    /// problem document, if it is one.
    public init(status: Int, body: HTTPBody?) async {
        let bytes = await Self.prefix(of: body, limit: Self.bodyLimit)
        self.init(
            status: status, problem: try? JSONDecoder().decode(Components.Schemas.Problem.self, from: Data(bytes)),
            body: String(decoding: bytes, as: UTF8.self))
    }

    /// An answer with a status the document does not list for the operation (the generated client's
    /// `.undocumented(statusCode:_:)`).
    public init(undocumented status: Int, _ payload: UndocumentedPayload) async {
        await self.init(status: status, body: payload.body)
    }

    /// `detail (HTTP status)` for a problem document, else the status and the start of the body.
    public var description: String {
        if let problem { return "\(problem.detail) (HTTP \(status))" }
        return "HTTP \(status)\(body.isEmpty ? "" : ": " + body.prefix(300))"
    }

    /// Whether the problem document's type is `…/<name>` (`https://klevr.dev/problems/<name>`).
    public func isProblem(_ name: String) -> Bool {
        problem?._type.hasSuffix("/" + name) ?? false
    }

    /// The first `limit` bytes of a body; a body that breaks off yields what arrived.
    static func prefix(of body: HTTPBody?, limit: Int) async -> [UInt8] {
        guard let body else { return [] }
        var bytes: [UInt8] = []
        do {
            for try await chunk in body {
                bytes += chunk.prefix(limit - bytes.count)
                if bytes.count >= limit { break }
            }
        } catch {
            // What arrived before the break is still worth quoting.
        }
        return bytes
    }
}
