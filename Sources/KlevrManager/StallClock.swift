import Foundation
import KlevrCore
import Logging
import ServiceLifecycle
import Synchronization

/// Notices when the manager itself stood still (SIGSTOP, a frozen VM, a stalled host), so that agents are
/// not marked offline for heartbeats the manager could not receive.
///
/// A ticking loop records a monotonic instant every ``tickInterval``. A gap much longer than that means the
/// process was not running: the time it resumed becomes the start of a grace period (as after a restart),
/// during which agents keep their liveness while they reconnect. A reader that finds the last tick too old
/// is itself in the first moments after a stall, before the loop has run: it takes "now" as the resume time.
///
/// A pure value: instants and wall times are passed in. ``StallClock`` holds it for the manager.
struct StallDetector: Sendable {
    /// How often the loop ticks.
    static let tickInterval = Duration.milliseconds(500)
    /// A gap between ticks longer than this is a stall. Generous, so that a merely busy host grants at most
    /// an extra grace period, never withholds one.
    let threshold: Duration
    private(set) var lastTick: ContinuousClock.Instant
    /// When the manager last resumed from a stall (epoch ms), or 0.
    private(set) var resumedAtMillis: Int64 = 0

    init(start: ContinuousClock.Instant, threshold: Duration = .seconds(3)) {
        self.lastTick = start
        self.threshold = threshold
    }

    /// Records a tick; returns the length of the stall it ended, if it ended one.
    mutating func tick(at instant: ContinuousClock.Instant, wallMillis: Int64) -> Duration? {
        let gap = instant - lastTick
        lastTick = max(lastTick, instant)
        guard gap > threshold else { return nil }
        resumedAtMillis = max(resumedAtMillis, wallMillis)
        return gap
    }

    /// The last time (epoch ms) the manager resumed from a stall, counting one that is ending right now.
    func resumedAt(at instant: ContinuousClock.Instant, wallMillis: Int64) -> Int64 {
        instant - lastTick > threshold ? wallMillis : resumedAtMillis
    }
}

/// The manager's ``StallDetector`` behind a lock, shared by the ticking service and liveness readers.
final class StallClock: Sendable {
    private let detector: Mutex<StallDetector>

    init(start: ContinuousClock.Instant = ContinuousClock.now) {
        detector = Mutex(StallDetector(start: start))
    }

    func tick(at instant: ContinuousClock.Instant = .now, wallMillis: Int64 = Clock.nowMillis()) -> Duration? {
        detector.withLock { $0.tick(at: instant, wallMillis: wallMillis) }
    }

    /// See ``StallDetector/resumedAt(at:wallMillis:)``.
    func resumedAt(at instant: ContinuousClock.Instant = .now, wallMillis: Int64 = Clock.nowMillis()) -> Int64 {
        detector.withLock { $0.resumedAt(at: instant, wallMillis: wallMillis) }
    }
}

/// Ticks the manager's ``StallClock`` and logs each stall it ends, once.
struct StallWatch: Service {
    let clock: StallClock
    let logger: Logger

    func run() async throws {
        _ = clock.tick()
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(for: StallDetector.tickInterval)
            if let gap = clock.tick() {
                logger.warning(
                    "the manager was stalled; agents get a grace period before they can be marked offline",
                    metadata: ["stalled.seconds": "\(gap.components.seconds)"])
            }
        }
    }
}

extension StallWatch: CustomStringConvertible {
    var description: String { "StallWatch" }
}
