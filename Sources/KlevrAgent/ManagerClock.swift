import Foundation
import KlevrCore
import Synchronization

/// The agent's estimate of the manager's clock, which every time the zone judges is expressed in.
///
/// Real fleets have wrong clocks; the agent's own wall clock only measures its skew. Each answer that
/// carries the manager's time (directly, or a primary's estimate of it in its signed answer) resets the
/// estimate, which then advances on the monotonic clock, so that a wall-clock jump changes nothing.
public final class ManagerClock: Sendable {
    private struct Reading {
        var managerTime: Int64
        var at: ContinuousClock.Instant
    }

    private let reading = Mutex<Reading?>(nil)

    public init(managerTime: Int64? = nil) {
        if let managerTime { observe(managerTime) }
    }

    static let saneSpan: Int64 = 10 * 365 * 86_400_000

    /// How far a member's word may move an estimate already held (a primary relays the manager's time;
    /// it cannot move this agent's clock by hours).
    public static let peerCorrectionLimit: Int64 = 5 * 60_000

    /// Records the manager's time as just received; from a peer (`fromPeer`), only within
    /// ``peerCorrectionLimit`` of the estimate held, once there is one.
    public func observe(_ managerTime: Int64, fromPeer: Bool = false) {
        // Nothing more than ten years from this host's wall clock is a time anyone meant.
        let wall = Clock.nowMillis()
        guard managerTime > 0, managerTime >= wall - Self.saneSpan, managerTime <= wall + Self.saneSpan else { return }
        if fromPeer, isKnown {
            let current = now()
            guard managerTime >= current - Self.peerCorrectionLimit, managerTime <= current + Self.peerCorrectionLimit else { return }
        }
        reading.withLock { $0 = Reading(managerTime: managerTime, at: .now) }
    }

    /// Whether the manager's time was heard of yet.
    public var isKnown: Bool { reading.withLock { $0 != nil } }

    /// The manager's time now (epoch ms); the local wall clock until it is known.
    public func now() -> Int64 {
        reading.withLock { current in
            guard let current else { return Clock.nowMillis() }
            let elapsed = ContinuousClock.now - current.at
            return current.managerTime + elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
        }
    }

    /// The local wall clock minus the manager's (ms), once known.
    public var skewMillis: Int64? {
        isKnown ? Clock.nowMillis() - now() : nil
    }
}
