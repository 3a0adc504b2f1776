/// A stored value that does not decode to its type (a role that is no role, say). It is an error, never
/// mapped to a default: a corrupted or foreign row must not quietly become something it was not.
public struct StoredValueError: Error, Sendable, Equatable, CustomStringConvertible {
    public var table: String
    public var column: String
    public var value: String

    public init(table: String, column: String, value: String) {
        self.table = table
        self.column = column
        self.value = value
    }

    public var description: String { "\(table).\(column) holds '\(value)', which this version does not know" }
}
