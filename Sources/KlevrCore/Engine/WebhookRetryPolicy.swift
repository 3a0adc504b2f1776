/// When a failed webhook delivery is tried again: exponential backoff with jitter, for at least 24 hours.
///
/// After attempt `n` failed, the next one waits `min(firstDelay × multiplier^(n−1), maximumDelay)`, scaled by a
/// random factor in `[1 − jitter, 1 + jitter]` so that a receiver that comes back is not hit by every queued
/// delivery in the same second. With the defaults: about 5 s, 20 s, 80 s, 5 min, 21 min, 85 min, then every 2 h.
///
/// A delivery gives up only after an attempt made at least ``retryWindow`` after its first attempt, so a receiver
/// that is down for up to a day still gets the event (about 17 attempts with the defaults). Times are epoch ms.
public struct WebhookRetryPolicy: Sendable, Hashable {
    /// The wait after the first failed attempt.
    public var firstDelay: Int64
    /// The growth factor of the wait.
    public var multiplier: Int64
    /// The longest wait between two attempts.
    public var maximumDelay: Int64
    /// The relative spread of a wait (0.2: ±20 %).
    public var jitter: Double
    /// How long after the first attempt attempts continue.
    public var retryWindow: Int64

    /// The schedule with the defaults described above.
    public init(
        firstDelay: Int64 = 5_000, multiplier: Int64 = 4, maximumDelay: Int64 = 2 * 3_600_000, jitter: Double = 0.2,
        retryWindow: Int64 = 24 * 3_600_000
    ) {
        self.firstDelay = max(1, firstDelay)
        self.multiplier = max(1, multiplier)
        self.maximumDelay = max(self.firstDelay, maximumDelay)
        self.jitter = min(max(jitter, 0), 0.9)
        self.retryWindow = max(0, retryWindow)
    }

    /// The wait after failed attempt number `attempt` (1-based) before jitter.
    public func nominalDelay(afterAttempt attempt: Int) -> Int64 {
        var delay = firstDelay
        var step = 1
        while step < attempt, delay < maximumDelay {
            delay = delay > maximumDelay / multiplier ? maximumDelay : delay * multiplier
            step += 1
        }
        return min(delay, maximumDelay)
    }

    /// The range a jittered wait falls in.
    public func delayBounds(afterAttempt attempt: Int) -> ClosedRange<Int64> {
        let nominal = Double(nominalDelay(afterAttempt: attempt))
        return Int64((nominal * (1 - jitter)).rounded(.down))...Int64((nominal * (1 + jitter)).rounded(.up))
    }

    /// When to try again after failed attempt number `attempt`, or nil to give up.
    /// - Parameters:
    ///   - firstAttemptAt: when the delivery was first attempted.
    ///   - lastAttemptAt: when attempt `attempt` was made.
    ///   - unit: a number in `[0, 1)` choosing the point within the jitter range (random in production; fixed in tests).
    public func nextAttempt(afterAttempt attempt: Int, firstAttemptAt: Int64, lastAttemptAt: Int64, unit: Double) -> Int64? {
        guard lastAttemptAt - firstAttemptAt < retryWindow else { return nil }
        let bounds = delayBounds(afterAttempt: attempt)
        let clamped = min(max(unit, 0), 1)
        let delay = bounds.lowerBound + Int64((Double(bounds.upperBound - bounds.lowerBound) * clamped).rounded(.down))
        return lastAttemptAt + delay
    }

    /// As ``nextAttempt(afterAttempt:firstAttemptAt:lastAttemptAt:unit:)`` with the jitter drawn from `generator`.
    public func nextAttempt(
        afterAttempt attempt: Int, firstAttemptAt: Int64, lastAttemptAt: Int64, using generator: inout some RandomNumberGenerator
    ) -> Int64? {
        nextAttempt(afterAttempt: attempt, firstAttemptAt: firstAttemptAt, lastAttemptAt: lastAttemptAt, unit: Double.random(in: 0..<1, using: &generator))
    }
}
