/// Limits password guessing: after 10 failed logins for a user name within 5 minutes, further attempts
/// for that name are refused until the window has passed.
actor LoginThrottle {
    private var failures: [String: [Int64]] = [:]
    private let limit = 10
    private let windowMillis: Int64 = 5 * 60 * 1000

    func isBlocked(_ username: String, now: Int64) -> Bool {
        let recent = (failures[username] ?? []).filter { now - $0 < windowMillis }
        failures[username] = recent.isEmpty ? nil : recent
        return recent.count >= limit
    }

    func recordFailure(_ username: String, now: Int64) {
        if failures.count > 100_000 { failures.removeAll() }
        failures[username, default: []].append(now)
    }

    func reset(_ username: String) {
        failures[username] = nil
    }
}
