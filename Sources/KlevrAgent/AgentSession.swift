import Foundation
import KlevrAPI
import KlevrCore
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// The agent's conversation with the manager once enrolled: the poll loop and the push loop.
struct AgentSession: Sendable {
    let identity: AgentIdentity
    let client: JSONClient
    let outbox: Outbox
    let registry: RunRegistry
    let logger: Logger
    let heartbeat: Duration
    let stopping = StopFlag()

    /// Holds a long-poll open and hands received runs to `deliver`; applies cancel orders.
    func pollLoop(deliver: AsyncStream<RunEnvelope>.Continuation) async {
        var backoff = Duration.seconds(1)
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let answer = try await cancelWhenGracefulShutdown {
                    try await client.send(
                        .POST, "/api/v1/agent/sync", body: SyncRequest(wait: true, reports: []), as: SyncResponse.self,
                        timeout: .seconds(90))
                }
                backoff = .seconds(1)
                await handle(answer, deliver: deliver)
            } catch {
                if Task.isShuttingDownGracefully || Task.isCancelled { break }
                logger.warning("sync failed; retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(10))
            }
        }
    }

    /// Hands the runs of a sync answer to the executor and applies its cancel orders. Both loops do
    /// this: the manager hands out work in whichever answer comes first.
    func handle(_ answer: SyncResponse, deliver: AsyncStream<RunEnvelope>.Continuation) async {
        for envelope in answer.runs { deliver.yield(envelope) }
        for order in answer.cancels where order.agentId == identity.agentId {
            await cancel(order.runId)
        }
    }

    /// Applies a cancel order: stops the run if it executes; a run never received is recorded as
    /// canceled so that a late delivery does not start it.
    func cancel(_ runID: String) async {
        if let control = await registry.control(runID) {
            await control.stop(.canceled)
            return
        }
        do {
            if try await outbox.begin(runID, at: Clock.nowMillis()) {
                try await outbox.finish(
                    RunResult(runId: runID, outcome: .canceled, exitCode: nil, reason: "canceled before it started", result: nil, finishedAt: Clock.nowMillis()))
            }
        } catch {
            logger.error("could not record a cancel", metadata: ["run.id": "\(runID)", "error": "\(error)"])
        }
    }

    /// Sends the outbox whenever it has something, and a heartbeat at least every interval. After
    /// ``finishAfterRuns()`` it flushes once more and returns.
    func pushLoop(deliver: AsyncStream<RunEnvelope>.Continuation) async {
        let doorbell = outbox.doorbell
        var backoff = Duration.seconds(1)
        while true {
            let finishing = await stopping.isSet
            do {
                repeat {
                    let report = await outbox.report(agentID: identity.agentId)
                    let answer = try await client.send(
                        .POST, "/api/v1/agent/sync", body: SyncRequest(wait: false, reports: [report]), as: SyncResponse.self,
                        timeout: .seconds(60))
                    await outbox.apply(answer.acks)
                    await handle(answer, deliver: deliver)
                    backoff = .seconds(1)
                    if report.isEmpty { break }
                } while await !outbox.isEmpty
            } catch {
                if finishing {
                    logger.warning("could not send the outbox before stopping; it is kept on disk", metadata: ["error": "\(error)"])
                    return
                }
                logger.warning("push failed; retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(10))
                continue
            }
            if finishing { return }
            // Wait for new outbox content, the heartbeat interval, or the stop signal.
            let heartbeat = self.heartbeat
            let stopping = self.stopping
            await withTaskGroup(of: Void.self) { race in
                race.addTask {
                    try? await Task.sleep(for: heartbeat)
                }
                race.addTask { await stopping.wait() }
                race.addTask { await doorbell.wait() }
                _ = await race.next()
                race.cancelAll()
            }
        }
    }

    /// Asks the push loop to flush once more after every run has ended, then return.
    func finishAfterRuns() async {
        await registry.waitUntilEmpty()
        await stopping.set()
    }
}

/// A one-way flag that async code can wait on.
actor StopFlag {
    private(set) var isSet = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func set() {
        isSet = true
        for waiter in waiters { waiter.resume() }
        waiters.removeAll()
    }

    func wait() async {
        if isSet { return }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if isSet { continuation.resume() } else { waiters.append(continuation) }
            }
        } onCancel: {
            Task { await self.releaseAll() }
        }
    }

    private func releaseAll() {
        for waiter in waiters { waiter.resume() }
        waiters.removeAll()
    }
}
