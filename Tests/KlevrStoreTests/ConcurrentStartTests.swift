import Foundation
import KlevrCore
import KlevrStore
import Logging
import SQLKit
import Testing

/// Several managers may start on one database at once: migrations are serialized, and a key two writers
/// race for is a conflict (409), never an internal error.
@Suite struct ConcurrentStartTests {
    @Test(arguments: Engine.available)
    func aUniqueKeyViolationIsAConflict(_ engine: Engine) async throws {
        try await withStore(engine) { store in
            let insert: @Sendable (any SQLDatabase) async throws -> Void = { db in
                try await db.raw("INSERT INTO schema_migrations (version, applied_at) VALUES (\(bind: Int64(999_999)), 0)").run()
            }
            try await store.database.read(insert)
            await #expect(throws: StoreError.self) { try await store.database.read(insert) }
            do {
                try await store.database.transaction(insert)
                Issue.record("a second insert of the same key succeeded")
            } catch let error as StoreError {
                guard case .conflict = error else {
                    Issue.record("expected a conflict, got \(error)")
                    return
                }
            }
        }
    }

    @Test func migrationsOfTwoManagersOnOnePostgreSQLAreSerialized() async throws {
        guard Engine.available.contains(.postgres) else { return }
        try await withTwoPostgresStores { first, second in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await first.migrate() }
                group.addTask { try await second.migrate() }
                try await group.waitForAll()
            }
            // Both see the whole schema, and a later start has nothing left to do.
            #expect(try await first.userCount() == 0)
            try await second.migrate()
        }
    }

    @Test func databaseFilesArePrivateInAnOpenDirectory() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("klevr-modes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("klevr.db").path
        // A database file left with a wide mode by an older version is made private too.
        FileManager.default.createFile(atPath: path + "-shm", contents: nil, attributes: [.posixPermissions: 0o666])
        let store = try await Store.open(.sqlite(path: path), logger: Logger(label: "test.modes"))
        try await store.migrate()
        _ = try await store.createZone(name: "z", description: "", now: Clock.nowMillis(), actor: .system)
        for file in [path, path + "-wal", path + "-shm"] {
            #expect(PrivateFile.mode(file) == 0o600, "\(file)")
        }
        await store.database.close()
    }
}

/// Two stores on one new PostgreSQL database, as two managers would have.
func withTwoPostgresStores(_ body: @Sendable (Store, Store) async throws -> Void) async throws {
    let logger = Logger(label: "test.store")
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
    let target = DatabaseURL.postgres(host: host, port: port, username: username, password: password, database: name)
    let first = try await Store.open(target, logger: logger)
    let second = try await Store.open(target, logger: logger)
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await first.database.run() }
        group.addTask { try await second.database.run() }
        do {
            try await body(first, second)
        } catch {
            group.cancelAll()
            throw error
        }
        group.cancelAll()
    }
}

/// An unexpected database error is described by what went wrong, not only by its type name.
@Suite struct DatabaseErrorDescriptionTests {
    @Test(arguments: Engine.available)
    func aDatabaseErrorSaysWhatWentWrong(_ engine: Engine) async throws {
        try await withStore(engine) { store in
            do {
                try await store.database.read { db in try await db.raw("SELECT no_such_column FROM schema_migrations").run() }
                Issue.record("the query succeeded")
            } catch {
                let text = DatabaseErrors.describe(error)
                #expect(text.contains("no_such_column"), "\(text)")
                #expect(engine == .sqlite ? text.hasPrefix("SQLite:") : text.contains("sqlstate=42703"), "\(text)")
            }
        }
    }
}
