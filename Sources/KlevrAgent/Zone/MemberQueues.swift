import KlevrAPI
import ServiceLifecycle

/// On a primary: the runs and cancels received from the manager for each secondary, until the
/// secondary's next poll picks them up (a lost answer is healed by the manager's redelivery), and which
/// members the primary hears from (a held poll, or a request within the last `liveWindow`).
actor MemberQueues {
    private var runs: [String: [RunEnvelope]] = [:]
    private var cancels: [String: [CancelOrder]] = [:]
    private var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]
    private var lastHeard: [String: ContinuousClock.Instant] = [:]
    private var holding: [String: Int] = [:]
    /// A member not heard from for this long is not counted live (longer than the longest held poll).
    static let liveWindow: Duration = .seconds(35)

    /// A member's request arrived. Returns true when the member was not counted live before (the
    /// manager should hear of it now, not at the next exchange).
    @discardableResult
    func heard(_ member: String) -> Bool {
        let cutoff = ContinuousClock.now - Self.liveWindow
        let wasLive = lastHeard[member].map { $0 >= cutoff } ?? false
        lastHeard[member] = .now
        return !wasLive
    }

    /// The members heard from now.
    func liveMembers() -> [String] {
        let cutoff = ContinuousClock.now - Self.liveWindow
        lastHeard = lastHeard.filter { $0.value >= cutoff || (holding[$0.key] ?? 0) > 0 }
        return Array(lastHeard.keys)
    }

    /// Forgets members that left the membership.
    func keepOnly(_ members: Set<String>) {
        lastHeard = lastHeard.filter { members.contains($0.key) }
        runs = runs.filter { members.contains($0.key) }
        cancels = cancels.filter { members.contains($0.key) }
    }

    /// Answers every held poll now (the membership changed, or this agent stops being primary).
    func wakeAll() {
        for member in Array(waiters.keys) { wake(member) }
    }

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
        lastHeard[member] = .now
        if runs[member]?.isEmpty ?? true, cancels[member]?.isEmpty ?? true, seconds > 0 {
            holding[member, default: 0] += 1
            defer {
                holding[member, default: 1] -= 1
                if holding[member] == 0 { holding[member] = nil }
                lastHeard[member] = .now
            }
            // A graceful shutdown of this agent answers the held poll at once (with what waits, maybe
            // nothing), so that no member's poll keeps the peer server from stopping.
            _ = try? await cancelWhenGracefulShutdown {
                await withTaskGroup(of: Void.self) { race in
                    race.addTask { try? await Task.sleep(for: .milliseconds(Int(seconds * 1000))) }
                    race.addTask { await self.waitForWork(member) }
                    _ = await race.next()
                    race.cancelAll()
                }
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
