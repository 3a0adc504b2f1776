import Foundation
import KlevrAPI
import KlevrCore

/// Turns the short ids the CLI prints into full ids, by listing the newest items of their kind.
struct IDResolver {
    let client: Client

    /// How many of the newest items are searched for a prefix (pages of 500).
    static let searchedPages = 20

    /// One page of ids and the cursor of the next.
    typealias Page = (ids: [String], nextCursor: String?)

    func run(_ text: String) async throws -> String {
        try await resolve(text, noun: "run") { cursor in
            let page = try await client.listRuns(query: .init(limit: 500, cursor: cursor)).ok.body.json
            return (page.items.map(\.id), page.nextCursor)
        }
    }

    func task(_ text: String) async throws -> String {
        try await resolve(text, noun: "task") { cursor in
            let page = try await client.listTasks(query: .init(limit: 500, cursor: cursor)).ok.body.json
            return (page.items.map(\.id), page.nextCursor)
        }
    }

    func agent(_ text: String) async throws -> String {
        try await resolve(text, noun: "agent") { cursor in
            let page = try await client.listAgents(query: .init(limit: 500, cursor: cursor)).ok.body.json
            return (page.items.map(\.id), page.nextCursor)
        }
    }

    /// A full id is used as it is; a prefix is looked up among the newest items and must name exactly one.
    func resolve(_ text: String, noun: String, page: (_ cursor: String?) async throws -> Page) async throws -> String {
        if Validation.isValidID(text) { return text }
        guard IDPrefix.isPossiblePrefix(text) else { throw CLIError("'\(text)' is not a \(noun) id or the start of one") }
        var ids: [String] = []
        var cursor: String?
        for _ in 0..<Self.searchedPages {
            let answer = try await api { try await page(cursor) }
            ids += answer.ids
            guard let next = answer.nextCursor, !answer.ids.isEmpty else { break }
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
