import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

// Helpers shared by the test suites: waiting on a condition with a deadline, and scanning processes.

/// Waits until `condition` holds, checking every 100 ms, for at most `seconds`; records an issue naming
/// `what` and throws when the deadline passes (a test waits on conditions, never on a fixed sleep).
public func eventually(
    _ seconds: Double, _ what: String, sourceLocation: SourceLocation = #_sourceLocation, _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while ContinuousClock.now < deadline {
        if (try? await condition()) == true { return }
        try await Task.sleep(for: .milliseconds(100))
    }
    if try await condition() { return }
    Issue.record("timed out after \(seconds) s waiting for: \(what)", sourceLocation: sourceLocation)
    throw CancellationError()
}

/// The processes of this machine, found by a marker in their command line (how tests find the scripts
/// their runs started, or what a killed agent left behind).
public enum Processes {
    /// The ids of the processes whose command line (arguments joined by spaces) contains `marker`,
    /// this scan's own reads excluded.
    public static func matching(_ marker: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { pid -> Int32? in
            guard pid.allSatisfy(\.isNumber), let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
            let command = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            return command.contains(marker) && !command.contains("/proc") ? Int32(pid) : nil
        }
    }

    /// Whether any process carries `marker`.
    public static func exist(_ marker: String) -> Bool { !matching(marker).isEmpty }

    /// SIGKILLs every process that carries `marker`.
    public static func kill(_ marker: String) {
        for pid in matching(marker) { _ = Glibc.kill(pid, SIGKILL) }
    }
}
