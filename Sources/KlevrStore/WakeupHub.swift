/// Wakes up requests that wait for something to happen to a key (an agent's new work, a run's new log).
///
/// The pattern is: read ``version(_:)``, check the store, then ``wait(_:since:seconds:)``. A signal sent
/// after the version was read makes the wait return at once, so work stored between the check and the
/// wait is never missed. Spurious wake-ups are possible and harmless: callers check the store again.
public actor WakeupHub {
    private var versions: [String: UInt64] = [:]
    private var tick: UInt64 = 0
    private var waiters: [String: [Int: CheckedContinuation<Bool, Never>]] = [:]
    private var nextID = 0

    public init() {}

    /// The current version of a key.
    public func version(_ key: String) -> UInt64 {
        versions[key] ?? 0
    }

    /// Waits until `key` is signalled after `since` (true) or `seconds` pass (false).
    public func wait(_ key: String, since: UInt64, seconds: Double) async -> Bool {
        if (versions[key] ?? 0) != since { return true }
        nextID += 1
        let id = nextID
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                waiters[key, default: [:]][id] = continuation
                // The timer is an unstructured task on purpose: it only resumes this waiter, holds no
                // resources, and ends by itself.
                Task { [weak self] in
                    try? await Task.sleep(for: .seconds(seconds))
                    await self?.expire(key, id)
                }
            }
        } onCancel: {
            Task { [weak self] in await self?.expire(key, id) }
        }
    }

    /// Wakes every waiter of these keys.
    public func signal(_ keys: some Sequence<String>) {
        for key in keys {
            tick &+= 1
            versions[key] = tick
            if let list = waiters.removeValue(forKey: key) {
                for continuation in list.values { continuation.resume(returning: true) }
            }
        }
        // Versions of keys nobody waits for are only needed briefly; forgetting them causes at most one
        // spurious wake-up, so the table is bounded by clearing it when it grows large.
        if versions.count > 200_000 {
            versions = versions.filter { waiters[$0.key] != nil }
        }
    }

    private func expire(_ key: String, _ id: Int) {
        if let continuation = waiters[key]?.removeValue(forKey: id) {
            if waiters[key]?.isEmpty == true { waiters[key] = nil }
            continuation.resume(returning: false)
        }
    }
}
