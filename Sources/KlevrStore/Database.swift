import KlevrCore
import Logging
import NIOCore
import PostgresKit
import PostgresNIO
import SQLKit
import SQLiteKit
import SQLiteNIO
import ServiceLifecycle
import Synchronization

/// The manager's connection to SQLite or PostgreSQL, with one code path for both through SQLKit.
///
/// Run it as a `Service`: for PostgreSQL it runs the connection pool, for SQLite it closes the
/// connection at shutdown. Every statement goes through ``read(_:)`` or ``transaction(_:)``.
public final class Database: Service, Sendable {
    enum Backend: Sendable {
        case sqlite(SQLiteConnection, AsyncLock)
        case postgres(PostgresClient)
    }

    let backend: Backend
    let logger: Logger
    private let closed = Mutex(false)
    private let accesses = Atomic<Int>(0)

    /// How many times the database was used (each ``read(_:)`` and each ``transaction(_:)`` counts once),
    /// for benchmarks that measure what a workload costs the store.
    public var accessCount: Int { accesses.load(ordering: .relaxed) }

    init(backend: Backend, logger: Logger) {
        self.backend = backend
        self.logger = logger
    }

    /// Opens the database. SQLite files are created (with their directory) and put in WAL mode.
    public static func open(_ url: DatabaseURL, logger: Logger) async throws -> Database {
        switch url {
        case .sqlite(let path):
            // The database holds password hashes and credentials: mode 0600 whatever the umask or the mode
            // of its directory. SQLite gives its -wal and -shm files the mode of the database file; they
            // are set again once WAL mode made them, for files left by an older version.
            try PrivateFile.prepare(path)
            let connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
            let db = connection.sql(queryLogLevel: nil)
            for pragma in ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON", "PRAGMA busy_timeout=5000"] {
                try await db.raw(SQLQueryString(pragma)).run()
            }
            for companion in [path + "-wal", path + "-shm", path + "-journal"] {
                try PrivateFile.restrict(companion)
            }
            return Database(backend: .sqlite(connection, AsyncLock()), logger: logger)
        case .postgres(let host, let port, let username, let password, let database):
            var configuration = PostgresClient.Configuration(
                host: host, port: port, username: username, password: password, database: database, tls: .disable)
            configuration.options.maximumConnections = 20
            let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
            return Database(backend: .postgres(client), logger: logger)
        }
    }

    /// Whether this is the PostgreSQL engine (for the few statements whose SQL differs).
    public var isPostgres: Bool {
        if case .postgres = backend { return true }
        return false
    }

    public func run() async throws {
        switch backend {
        case .postgres(let client):
            await client.run()
        case .sqlite:
            try? await gracefulShutdown()
            await close()
        }
    }

    /// Closes an SQLite connection (PostgreSQL pools close when their `run()` ends). Closing twice is
    /// harmless.
    public func close() async {
        if case .sqlite(let connection, let lock) = backend {
            await lock.lock()
            // The close itself runs in a task of its own, so that the cancellation of the caller (a service
            // group cancelled rather than shut down) cannot interrupt it and leave the connection open.
            // A close that fails leaves the flag unset, so a later call tries again.
            if !closed.withLock({ $0 }), await Task(operation: { (try? await connection.close()) != nil }).value {
                closed.withLock { $0 = true }
            }
            await lock.unlock()
        }
    }

    /// Runs statements that need no atomicity across them.
    ///
    /// A violated unique key of either engine becomes ``StoreError/conflict(_:)`` here, in one place:
    /// two writers that raced for the same key (two managers creating the first admin, two requests
    /// creating one zone) get a 409, never a 500.
    public func read<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        do {
            return try await onConnection(body)
        } catch let error where DatabaseErrors.isUniqueViolation(error) {
            throw StoreError.conflict("it already exists (a concurrent request created the same thing)")
        }
    }

    private func onConnection<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        accesses.add(1, ordering: .relaxed)
        switch backend {
        case .sqlite(let connection, let lock):
            await lock.lock()
            do {
                let value = try await body(connection.sql(queryLogLevel: nil))
                await lock.unlock()
                return value
            } catch {
                await lock.unlock()
                throw error
            }
        case .postgres(let client):
            return try await client.withConnection { connection in
                try await body(connection.sql(queryLogLevel: nil))
            }
        }
    }

    /// Runs `body` in one transaction: all of its statements are applied, or none.
    public func transaction<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await read { db in
            try await db.raw("BEGIN").run()
            do {
                let value = try await body(db)
                try await db.raw("COMMIT").run()
                return value
            } catch {
                try? await db.raw("ROLLBACK").run()
                throw error
            }
        }
    }
}

extension Database {
    /// Creates an empty PostgreSQL database (used by the test suites to give each test its own).
    /// - Throws: ``StoreError/invalidInput(_:)`` for names other than lowercase letters, digits and `_`.
    public func createDatabase(named name: String) async throws {
        guard isPostgres, !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") }) else {
            throw StoreError.invalidInput("database names are lowercase letters, digits and '_'")
        }
        try await read { db in try await db.raw("CREATE DATABASE \(unsafeRaw: name)").run() }
    }
}
