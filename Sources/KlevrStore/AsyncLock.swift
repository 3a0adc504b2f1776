

/// A first-in first-out lock for async code.
///
/// SQLite runs on one connection; the lock makes every transaction exclusive on it so that a
/// rollback can never undo another request's statement.
actor AsyncLock {
    private var locked = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func lock() async {
        if !locked {
            locked = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func unlock() {
        if !waiters.isEmpty {
            let next = waiters.removeFirst()
            next.resume()
        } else {
            locked = false
        }
    }
}
