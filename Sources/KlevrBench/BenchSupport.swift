import Foundation

/// A benchmark that could not run to its end, with the reason.
public struct BenchError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Writes a line of progress or result to standard output at once (benchmarks are often piped).
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}
