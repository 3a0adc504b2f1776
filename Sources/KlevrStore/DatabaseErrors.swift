import PostgresNIO
import SQLiteNIO

/// What the store needs to know about the errors of its two engines, said once.
public enum DatabaseErrors {
    /// Whether `error` is a violated unique or primary key (PostgreSQL SQLSTATE 23505, SQLite
    /// `SQLITE_CONSTRAINT_UNIQUE` / `_PRIMARYKEY`): two writers raced for the same key, a conflict.
    public static func isUniqueViolation(_ error: any Error) -> Bool {
        if let error = error as? PSQLError {
            return error.serverInfo?[.sqlState] == "23505"
        }
        if let error = error as? SQLiteError {
            switch error.reason {
            case .constraintUniqueFailed, .constraintPrimaryKeyFailed: return true
            default: return false
            }
        }
        return false
    }

    /// A description of an unexpected error for the log: what went wrong, without secrets.
    ///
    /// `PSQLError` prints only its type name (on purpose: its full form can carry the query and its
    /// bound values), so it is described by its SQLSTATE, message, table and constraint, never by its
    /// query, binds or `detail` (which quotes key values). SQLite errors carry a reason and SQLite's
    /// message. Anything else is described by `String(reflecting:)`.
    public static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            guard let info = error.serverInfo else {
                return "PostgreSQL: \(error.code)" + (error.underlying.map { ": " + String(reflecting: $0) } ?? "")
            }
            let parts: [(String, PSQLError.ServerInfo.Field)] = [
                ("sqlstate", .sqlState), ("message", .message), ("table", .tableName), ("constraint", .constraintName),
            ]
            let text = parts.compactMap { name, field in info[field].map { "\(name)=\($0)" } }.joined(separator: ", ")
            return "PostgreSQL: \(error.code): \(text)"
        }
        if let error = error as? SQLiteError {
            return "SQLite: \(error.description)"
        }
        return String(reflecting: error)
    }
}
