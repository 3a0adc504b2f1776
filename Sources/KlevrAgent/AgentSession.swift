import Foundation
import KlevrAPI
import KlevrCore
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// The agent's conversation with its upstream (the manager when primary, the primary otherwise):
/// the poll loop and the push loop.
struct AgentSession: Sendable {
    let identity: AgentIdentity
    let link: ZoneLink
    let outbox: Outbox
    let registry: RunRegistry
    let logger: Logger
    /// Sent with the first report of each start (the labels of `--labels` may have changed since enrollment).
    let facts: HostFacts
    let heartbeat: Duration
    let stopping = StopFlag()

    /// Holds a long-poll open; the link hands received runs and cancels to their agents.
    func pollLoop() async {
        var backoff = Duration.milliseconds(200)
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let link = self.link
                _ = try await cancelWhenGracefulShutdown {
                    try await link.sync(SyncRequest(wait: true, reports: []), timeout: .seconds(40))
                }
                backoff = .milliseconds(200)
            } catch is ZoneLink.NoUpstream {
                try? await Task.sleep(for: .milliseconds(100))
            } catch {
                if Task.isShuttingDownGracefully || Task.isCancelled { break }
                logger.debug("sync failed; retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: backoff)
                // Short: after a failover the new primary is polled within half a second of being known.
                backoff = min(backoff * 2, .milliseconds(500))
            }
        }
    }

    /// Sends the outbox whenever it has something, and a heartbeat at least every interval. After
    /// ``finishAfterRuns()`` it flushes once more and returns.
    func pushLoop() async {
        let doorbell = outbox.doorbell
        var backoff = Duration.milliseconds(200)
        var factsPending = true
        while true {
            let finishing = await stopping.isSet
            do {
                repeat {
                    var report = await outbox.report(agentID: identity.agentId)
                    if factsPending { report.facts = facts }
                    let answer = try await link.sync(SyncRequest(wait: false, reports: [report]), timeout: .seconds(60))
                    factsPending = false
                    await outbox.apply(answer.acks)
                    backoff = .milliseconds(200)
                    if report.isEmpty { break }
                    // A relay that could not reach the manager acknowledges nothing: wait before trying again.
                    if answer.acks == SyncAcks() { break }
                } while await !outbox.isEmpty
            } catch {
                if finishing {
                    logger.warning("could not send the outbox before stopping; it is kept on disk", metadata: ["error": "\(error)"])
                    return
                }
                if !(error is ZoneLink.NoUpstream) {
                    logger.debug("push failed; retrying", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(2))
                continue
            }
            if finishing { return }
            // Wait for new outbox content, the heartbeat interval, or the stop signal.
            let heartbeat = await outbox.isEmpty ? self.heartbeat : .milliseconds(500)
            let stopping = self.stopping
            await withTaskGroup(of: Void.self) { race in
                race.addTask { try? await Task.sleep(for: heartbeat) }
                race.addTask { await stopping.wait() }
                race.addTask {
                    await doorbell.wait()
                    // What follows at once (a short run's output and result after its start) goes in the
                    // same report: one exchange instead of several, through the primary and the manager.
                    try? await Task.sleep(for: .milliseconds(15))
                }
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

/// Applies cancel orders: stops the run if it executes; a run never received is recorded as canceled
/// so that a late delivery does not start it.
struct RunCanceler: Sendable {
    let outbox: Outbox
    let registry: RunRegistry
    let logger: Logger
    let clock: ManagerClock

    func cancel(_ runID: String) async {
        if let control = await registry.control(runID) {
            await control.stop(.canceled)
            return
        }
        do {
            if try await outbox.begin(runID, at: clock.now()) {
                try await outbox.finish(
                    RunResult(runId: runID, outcome: .canceled, exitCode: nil, reason: "canceled before it started", result: nil, finishedAt: clock.now()))
            }
        } catch {
            logger.error("could not record a cancel", metadata: ["run.id": "\(runID)", "error": "\(error)"])
        }
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
