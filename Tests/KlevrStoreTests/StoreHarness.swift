import Foundation
import KlevrCore
import KlevrStore
import Logging
import Testing

/// The engines the conformance suite runs on: SQLite always, PostgreSQL when the test script started
/// one and exported `KLEVR_TEST_POSTGRES_URL`.
enum Engine: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    static var available: [Engine] {
        ProcessInfo.processInfo.environment["KLEVR_TEST_POSTGRES_URL"] == nil ? [.sqlite] : [.sqlite, .postgres]
    }
}

/// Gives a test a fresh, migrated store on the engine: a new SQLite file, or a new PostgreSQL database.
func withStore(_ engine: Engine, _ body: @Sendable (Store) async throws -> Void) async throws {
    let logger = Logger(label: "test.store")
    switch engine {
    case .sqlite:
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("klevr-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try await Store.open(.sqlite(path: directory.appendingPathComponent("test.db").path), logger: logger)
        do {
            try await store.migrate()
            try await body(store)
        } catch {
            await store.database.close()
            throw error
        }
        await store.database.close()
    case .postgres:
        let url = try DatabaseURL.parse(ProcessInfo.processInfo.environment["KLEVR_TEST_POSTGRES_URL"] ?? "")
        guard case .postgres(let host, let port, let username, let password, _) = url else {
            Issue.record("KLEVR_TEST_POSTGRES_URL is not a postgres:// URL")
            return
        }
        let name = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let admin = try await Database.open(url, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await admin.run() }
            try await admin.createDatabase(named: name)
            group.cancelAll()
        }
        let store = try await Store.open(
            .postgres(host: host, port: port, username: username, password: password, database: name), logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await store.database.run() }
            do {
                try await store.migrate()
                try await body(store)
            } catch {
                group.cancelAll()
                throw error
            }
            group.cancelAll()
        }
    }
}
