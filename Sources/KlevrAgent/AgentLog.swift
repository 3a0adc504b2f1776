import Foundation
import KlevrCore
import Logging
import Synchronization

/// The agent's log level, changeable while it runs (`agent.set-log-level`), and its most recent log
/// lines kept in memory (`agent.collect-logs`): the agent logs to standard error only, so there is no
/// file to read back. Bounded: at most ``BuiltinCommands/logRingLines`` lines of at most 2 KiB each.
public final class AgentLog: Sendable {
    struct State {
        var level: Logger.Level
        var lines: [String] = []
        /// Index of the oldest line once the ring is full.
        var start = 0
        /// Whether lines were dropped since the agent started.
        var dropped = false
    }

    private let state: Mutex<State>
    let capacity: Int
    /// The longest line kept, in bytes.
    static let maxLineBytes = 2048

    public init(level: Logger.Level, capacity: Int = BuiltinCommands.logRingLines) {
        self.state = Mutex(State(level: level))
        self.capacity = max(1, capacity)
    }

    public var level: Logger.Level {
        get { state.withLock { $0.level } }
    }

    /// Sets the level; returns the one before.
    @discardableResult
    public func setLevel(_ level: Logger.Level) -> Logger.Level {
        state.withLock { state in
            defer { state.level = level }
            return state.level
        }
    }

    func record(_ line: String) {
        var line = line
        if line.utf8.count > Self.maxLineBytes { line = String(decoding: line.utf8.prefix(Self.maxLineBytes), as: UTF8.self) + "…" }
        state.withLock { state in
            if state.lines.count < capacity {
                state.lines.append(line)
            } else {
                state.lines[state.start] = line
                state.start = (state.start + 1) % capacity
                state.dropped = true
            }
        }
    }

    /// The newest `count` lines, oldest first, within `maxBytes`; whether older lines were left out
    /// (by the bound, or dropped from the ring since the start).
    public func recent(_ count: Int, maxBytes: Int = BuiltinCommands.maxLogBytes) -> (lines: [String], truncated: Bool, dropped: Bool) {
        let (all, dropped) = state.withLock { state in
            (Array(state.lines[state.start...] + state.lines[..<state.start]), state.dropped)
        }
        var picked: [String] = []
        var bytes = 0
        for line in all.reversed() {
            if picked.count >= count || bytes + line.utf8.count + 1 > maxBytes { break }
            picked.append(line)
            bytes += line.utf8.count + 1
        }
        return (picked.reversed(), picked.count < all.count, dropped)
    }
}

/// A log handler that lets ``AgentLog`` decide the level and keeps each line it writes in
/// ``AgentLog``'s ring, then has its inner handler (standard error) write it.
public struct AgentLogHandler: LogHandler {
    public var inner: any LogHandler
    let label: String
    let log: AgentLog

    public init(label: String, log: AgentLog, inner: any LogHandler) {
        self.label = label
        self.log = log
        self.inner = inner
        self.inner.logLevel = .trace
    }

    public var logLevel: Logger.Level {
        get { log.level }
        // The level is the agent's, changed through ``AgentLog/setLevel(_:)``.
        set {}
    }

    /// Kept here too: the line kept in the ring carries it whatever the inner handler does with it.
    public var metadata: Logger.Metadata = [:] {
        didSet { inner.metadata = metadata }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        guard event.level >= log.level else { return }
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let metadataText = merged.isEmpty ? "" : " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\(LogValue.escape($0.value))" }.joined(separator: " ")
        let time = Date().formatted(.iso8601)
        log.record("\(time) \(event.level) \(label):\(metadataText) \(LogValue.escape(event.message.description))")
        inner.log(event: event)
    }
}
