import KlevrAPI

/// On a primary: the runs and cancels received from the manager for each secondary, until the
/// secondary's next poll picks them up. A lost answer is healed by the manager's redelivery.
actor MemberQueues {
    private var runs: [String: [RunEnvelope]] = [:]
    private var cancels: [String: [CancelOrder]] = [:]
    private var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]

    func push(runs envelopes: [RunEnvelope], cancels orders: [CancelOrder]) {
        var touched: Set<String> = []
        for envelope in envelopes where !(runs[envelope.agentId]?.contains { $0.runId == envelope.runId } ?? false) {
            runs[envelope.agentId, default: []].append(envelope)
            touched.insert(envelope.agentId)
        }
        for order in orders where !(cancels[order.agentId]?.contains(order) ?? false) {
            cancels[order.agentId, default: []].append(order)
            touched.insert(order.agentId)
        }
        for member in touched { wake(member) }
    }

    /// Takes what waits for `member`, waiting up to `seconds` when nothing does.
    func take(_ member: String, waitingUpTo seconds: Double) async -> (runs: [RunEnvelope], cancels: [CancelOrder]) {
        if runs[member]?.isEmpty ?? true, cancels[member]?.isEmpty ?? true, seconds > 0 {
            await withTaskGroup(of: Void.self) { race in
                race.addTask { try? await Task.sleep(for: .milliseconds(Int(seconds * 1000))) }
                race.addTask { await self.waitForWork(member) }
                _ = await race.next()
                race.cancelAll()
            }
            wake(member)
        }
        let taken = (runs[member] ?? [], cancels[member] ?? [])
        runs[member] = nil
        cancels[member] = nil
        return taken
    }

    private func waitForWork(_ member: String) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if !(runs[member]?.isEmpty ?? true) || !(cancels[member]?.isEmpty ?? true) {
                    continuation.resume()
                } else {
                    waiters[member, default: []].append(continuation)
                }
            }
        } onCancel: {
            Task { await self.wake(member) }
        }
    }

    private func wake(_ member: String) {
        for waiter in waiters.removeValue(forKey: member) ?? [] { waiter.resume() }
    }
}
