import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

// Helpers shared by the test suites: waiting on a condition with a deadline, and scanning processes.

/// How much longer every deadline of the tests is than on a quiet machine: `KLEVR_TEST_TIME_SCALE`
/// (scripts/test.sh sets 3 for its loaded 2-core CI machine), 1 when unset or not a number of at least 1.
/// A deadline only bounds how long a test waits for a condition; a larger one never lets a wrong
/// result pass, it only lets a slow but right one arrive.
public enum TestTime {
    public static let scale: Double = {
        guard let text = ProcessInfo.processInfo.environment["KLEVR_TEST_TIME_SCALE"], let value = Double(text), value >= 1 else { return 1 }
        return value
    }()

    /// `seconds` times ``scale``.
    public static func scaled(_ seconds: Double) -> Double { seconds * scale }
}

/// Waits until `condition` holds, for at most `seconds` (times ``TestTime/scale``); records an issue
/// naming `what` and throws when the deadline passes (a test waits on conditions, never on a fixed
/// sleep). It checks after 100 ms, then less and less often, at most a second apart: a condition that
/// starts a process or asks a manager each time does not add to the load it waits through.
public func eventually(
    _ seconds: Double, _ what: String, sourceLocation: SourceLocation = #_sourceLocation, _ condition: () async throws -> Bool
) async throws {
    let limit = TestTime.scaled(seconds)
    let deadline = ContinuousClock.now + .seconds(limit)
    var pause = Duration.milliseconds(100)
    while ContinuousClock.now < deadline {
        if (try? await condition()) == true { return }
        try await Task.sleep(for: pause)
        pause = min(pause * 3 / 2, .seconds(1))
    }
    if try await condition() { return }
    Issue.record("timed out after \(limit) s waiting for: \(what)", sourceLocation: sourceLocation)
    throw CancellationError()
}

/// Runs blocking work (waiting for a process to end, a blocking socket read) on a thread of its own and
/// returns its result: Swift's cooperative pool has as many threads as cores (two on the CI machine),
/// and one blocked there stops every other task of the test process, deadlines still running.
public func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: work()) }.start()
    }
}

/// ``onOwnThread(_:)`` for work that can throw.
public func onOwnThreadThrowing<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await onOwnThread { Result { try work() } }.get()
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

/// Waiting, in the background, for processes a test ended from a `defer` (which cannot await, and must
/// not block one of the cooperative pool's few threads): ``inBackground(_:)`` runs the wait on a thread
/// of its own, and the ``WaitsForProcesses`` trait makes each test wait for its own before it counts as
/// done, so that no process outlives its test (or the test process).
public final class ProcessReaper: Sendable {
    /// The reaper of the running test (set by ``WaitsForProcesses``).
    @TaskLocal public static var current: ProcessReaper?

    private let pending = Mutex(0)

    public init() {}

    /// Runs `work` (blocking: waiting for processes to exit) on a thread of its own and returns at once;
    /// the running test's ``WaitsForProcesses`` scope waits for it to finish.
    public static func inBackground(_ work: @escaping @Sendable () -> Void) {
        let reaper = current
        reaper?.pending.withLock { $0 += 1 }
        Thread {
            work()
            reaper?.pending.withLock { $0 -= 1 }
        }.start()
    }

    /// Returns once every background wait started under this reaper has finished.
    public func waitForAll() async {
        await onOwnThread { while self.pending.withLock({ $0 }) > 0 { usleep(20_000) } }
    }
}

/// After each test of the suite (or the test) it is given to, waits until the processes that test left
/// ending in the background (``ProcessReaper/inBackground(_:)``) are gone.
public struct WaitsForProcesses: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        let reaper = ProcessReaper()
        do {
            try await ProcessReaper.$current.withValue(reaper) { try await function() }
        } catch {
            await reaper.waitForAll()
            throw error
        }
        await reaper.waitForAll()
    }
}

extension Trait where Self == WaitsForProcesses {
    /// See ``WaitsForProcesses``.
    public static var waitsForProcesses: Self { WaitsForProcesses() }
}

extension Process {
    /// Blocks until the process has ended, looking every 20 ms (for a thread of its own, never the
    /// cooperative pool). Not `waitUntilExit()`: on a thread without run loop sources that can spin,
    /// taking a core from the processes under test.
    public func waitForExit() {
        while isRunning { usleep(20_000) }
    }
}
