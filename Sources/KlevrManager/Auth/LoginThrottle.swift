/// Slows down password guessing per client address, in bounded memory.
///
/// Failures are counted per client address (an IPv6 address by its /64, since one host usually holds a
/// whole /64), never per user name: an attacker who fails logins for `alice` from one address slows down
/// that address only, and `alice` still logs in from anywhere else. User names are not kept at all, so
/// the memory does not depend on what names are sent.
///
/// Every attempt is charged as a failure when it is admitted (``admit(_:now:)``), before the password is
/// checked, and a successful login forgets its address again; so parallel guesses are charged as they
/// arrive rather than after bcrypt has answered them. The first ``freeFailures`` failures of an address
/// cost nothing; after that each new attempt must wait `2^(failures - freeFailures)` seconds (at most
/// ``maxDelayMillis``) since the last one, and is refused with a `Retry-After` before that. An address
/// that fails nothing for ``forgetAfterMillis`` is forgotten. At most ``capacity`` addresses are kept:
/// when the table is full, the entries that failed longest ago give way (a flood of new addresses can only
/// push out the oldest ones, never those that are blocked right now, which are the newest).
///
/// A pure value: time is passed in, so it is tested without sleeping. ``LoginThrottle`` is its actor shell.
struct LoginThrottleState: Sendable {
    struct Entry: Sendable, Equatable {
        var failures: Int
        var lastFailureMillis: Int64
    }

    let capacity: Int
    let freeFailures: Int
    let maxDelayMillis: Int64
    /// The wait after the first failure beyond the free ones; it doubles with each further failure.
    let firstDelayMillis: Int64
    let forgetAfterMillis: Int64
    private(set) var entries: [String: Entry] = [:]

    init(
        capacity: Int = 50_000, freeFailures: Int = 5, maxDelayMillis: Int64 = 5 * 60_000, firstDelayMillis: Int64 = 2_000,
        forgetAfterMillis: Int64 = 15 * 60_000
    ) {
        self.capacity = max(1, capacity)
        self.freeFailures = max(0, freeFailures)
        self.maxDelayMillis = maxDelayMillis
        self.firstDelayMillis = max(1, min(firstDelayMillis, maxDelayMillis))
        self.forgetAfterMillis = forgetAfterMillis
    }

    /// How long `address` must still wait before its next attempt, in milliseconds (0: it may try now).
    func waitMillis(_ address: String, now: Int64) -> Int64 {
        guard let entry = entries[address], now - entry.lastFailureMillis < forgetAfterMillis else { return 0 }
        let delay = delayMillis(afterFailures: entry.failures)
        return max(0, entry.lastFailureMillis + delay - now)
    }

    /// The wait imposed after `failures` failures.
    func delayMillis(afterFailures failures: Int) -> Int64 {
        let over = failures - freeFailures
        guard over > 0 else { return 0 }
        // The first delay, doubled for each further failure (2^over seconds by default), capped; the shift
        // is bounded and the product checked, so that nothing overflows.
        let factor = Int64(1) << Int64(min(over - 1, 20))
        let (delay, overflow) = firstDelayMillis.multipliedReportingOverflow(by: factor)
        return overflow ? maxDelayMillis : min(delay, maxDelayMillis)
    }

    /// Admits an attempt from `address` and charges it as a failure; returns 0, or the milliseconds it must
    /// still wait (the attempt is then refused and not charged).
    mutating func admit(_ address: String, now: Int64) -> Int64 {
        let wait = waitMillis(address, now: now)
        guard wait == 0 else { return wait }
        recordFailure(address, now: now)
        return 0
    }

    mutating func recordFailure(_ address: String, now: Int64) {
        var entry = entries[address] ?? Entry(failures: 0, lastFailureMillis: now)
        if now - entry.lastFailureMillis >= forgetAfterMillis { entry.failures = 0 }
        entry.failures += 1
        entry.lastFailureMillis = max(entry.lastFailureMillis, now)
        if entries[address] == nil && entries.count >= capacity { makeRoom(now: now) }
        entries[address] = entry
    }

    mutating func recordSuccess(_ address: String) {
        entries[address] = nil
    }

    /// Drops forgotten entries, then (if still full) the tenth of the table that failed longest ago, so
    /// that a full table costs one sort per `capacity / 10` new addresses rather than one per address.
    private mutating func makeRoom(now: Int64) {
        entries = entries.filter { now - $0.value.lastFailureMillis < forgetAfterMillis }
        guard entries.count >= capacity else { return }
        let drop = max(1, capacity / 10)
        let oldest = entries.sorted { $0.value.lastFailureMillis < $1.value.lastFailureMillis }.prefix(drop)
        for (address, _) in oldest { entries[address] = nil }
    }

    /// The key of a client address: IPv4 as it is, IPv6 by its first four groups (its /64), anything
    /// else (an address the server could not read) as one shared key, bounded in length.
    static func key(forAddress address: String?) -> String {
        guard let address, !address.isEmpty else { return "unknown" }
        if address.contains(":") {
            // SocketAddress prints IPv6 in full or compressed form; expand "::" enough to take 4 groups.
            let groups = address.split(separator: ":", omittingEmptySubsequences: false)
            var expanded: [Substring] = []
            for (index, group) in groups.enumerated() {
                if group.isEmpty, index > 0, index < groups.count - 1 {
                    let missing = max(0, 8 - (groups.count - 1))
                    expanded.append(contentsOf: Array(repeating: "0", count: missing))
                } else {
                    expanded.append(group.isEmpty ? "0" : group)
                }
            }
            return "v6:" + expanded.prefix(4).joined(separator: ":").prefix(64)
        }
        return String(address.prefix(64))
    }
}

/// The manager's login throttle: ``LoginThrottleState`` behind an actor.
actor LoginThrottle {
    private var state: LoginThrottleState

    init(state: LoginThrottleState = LoginThrottleState()) {
        self.state = state
    }

    /// Admits and charges an attempt; returns 0, or the milliseconds that `address` must still wait.
    func admit(_ address: String, now: Int64) -> Int64 {
        state.admit(address, now: now)
    }

    func recordSuccess(_ address: String) {
        state.recordSuccess(address)
    }

    /// The failures charged to `address` (for tests).
    func failures(of address: String) -> Int { state.entries[address]?.failures ?? 0 }

    /// How many addresses are tracked (for tests and benchmarks: it must stay bounded).
    var trackedAddresses: Int { state.entries.count }
}
