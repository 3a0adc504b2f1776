import Foundation

/// Where the manager keeps its data: `sqlite:PATH` or `postgres://user:password@host:port/database`.
public enum DatabaseURL: Sendable, Equatable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(host: String, port: Int, username: String, password: String?, database: String)

    /// Parses a `--database` value.
    /// - Throws: ``StoreError/invalidInput(_:)`` with a message saying what is wrong.
    public static func parse(_ text: String) throws -> DatabaseURL {
        if text.hasPrefix("sqlite:") {
            let path = String(text.dropFirst("sqlite:".count))
            guard !path.isEmpty else { throw StoreError.invalidInput("sqlite: needs a file path, e.g. sqlite:./klevr.db") }
            return .sqlite(path: path)
        }
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            guard let components = URLComponents(string: text), let host = components.host, !host.isEmpty else {
                throw StoreError.invalidInput("cannot read the PostgreSQL URL; expected postgres://user:password@host:port/database")
            }
            let database = String(components.path.drop(while: { $0 == "/" }))
            guard !database.isEmpty else { throw StoreError.invalidInput("the PostgreSQL URL names no database") }
            return .postgres(
                host: host, port: components.port ?? 5432, username: components.user ?? "postgres",
                password: components.password?.removingPercentEncoding, database: database)
        }
        throw StoreError.invalidInput("unknown database '\(text)'; use sqlite:PATH or postgres://user:password@host:port/database")
    }

    /// The URL without its password, for logs.
    public var description: String {
        switch self {
        case .sqlite(let path): "sqlite:\(path)"
        case .postgres(let host, let port, let username, _, let database): "postgres://\(username)@\(host):\(port)/\(database)"
        }
    }
}
