import Foundation
import KlevrAPI
import KlevrAgent
import KlevrCore
import NIOHTTP1

/// Turns the short ids the CLI prints into full ids, by listing the newest items of their kind.
struct IDResolver {
    let client: JSONClient

    /// How many of the newest items are searched for a prefix (pages of 500).
    static let searchedPages = 20

    private struct Identified: Codable, Sendable {
        var id: String
    }

    func run(_ text: String) async throws -> String { try await resolve(text, noun: "run", path: "/api/v1/runs") }
    func task(_ text: String) async throws -> String { try await resolve(text, noun: "task", path: "/api/v1/tasks") }
    func agent(_ text: String) async throws -> String { try await resolve(text, noun: "agent", path: "/api/v1/agents") }

    /// A full id is used as it is; a prefix is looked up among the newest items and must name exactly one.
    func resolve(_ text: String, noun: String, path: String) async throws -> String {
        if Validation.isValidID(text) { return text }
        guard IDPrefix.isPossiblePrefix(text) else { throw CLIError("'\(text)' is not a \(noun) id or the start of one") }
        var ids: [String] = []
        var cursor: String?
        for _ in 0..<Self.searchedPages {
            var page = path + "?limit=500"
            if let cursor { page += "&cursor=\(cursor.urlPathEscaped)" }
            let answer = try await api { try await client.send(.GET, page, as: Page<Identified>.self) }
            ids += answer.items.map(\.id)
            guard let next = answer.nextCursor, !answer.items.isEmpty else { break }
            cursor = next
        }
        switch IDPrefix.resolve(text, among: ids) {
        case .unique(let id):
            return id
        case .none:
            throw CLIError("no \(noun) id starts with '\(text)'")
        case .ambiguous(let matches):
            throw CLIError("'\(text)' is the start of several \(noun) ids (\(matches.joined(separator: ", "))…); give more characters")
        }
    }
}

extension Optional {
    /// The wrapped value transformed by an async function, or nil.
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async throws -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}
