import KlevrCore
import KlevrStore
import Logging
import ServiceLifecycle

/// Moves tasks and runs through time: fires the recurring tasks whose occurrence came (their runs are
/// created with the schedule's cursor moved in the same transaction, compare-and-set), queues the
/// scheduled runs whose time came, and ends `expired` the runs that did not start by their delivery
/// deadline. Run changes are decided by the run state machine and written with the old status in the
/// `WHERE` clause, so several managers (or a restart mid-pass) never fire, queue or expire anything
/// twice; the state lives in the database, so nothing is lost across a restart.
struct RunScheduler: Service {
    let manager: Manager
    /// The shortest and longest sleep between passes. It sleeps until the next moment something is due
    /// (``Store/nextSchedulerMoment(grace:)``), or until a task or run with a time is created here
    /// (``wakeKey``); the longest sleep bounds how late it notices one created by another manager.
    static let shortestSleepMillis: Int64 = 100
    static let longestSleepMillis: Int64 = 5_000
    /// Signalled when something with a time is created or resumed, so the scheduler looks at once.
    static let wakeKey = "scheduler"
    /// How long a dispatched run is given past its deadline before it is expired: its agent may have
    /// started it just before, by its own estimate of the manager's clock.
    static let dispatchedGraceMillis: Int64 = 5_000

    /// How often runs that can no longer be delivered are ended (a rarer, wider query).
    static let undeliverableEveryMillis: Int64 = 30_000

    func run() async throws {
        await cancelWhenGracefulShutdown { await manager.prepared.wait() }
        var lastSweep: Int64 = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let version = await manager.hub.version(Self.wakeKey)
            var sleepMillis = Self.longestSleepMillis
            do {
                let now = Clock.nowMillis()
                let sweep = now - lastSweep >= Self.undeliverableEveryMillis
                try await pass(now: now, sweepUndeliverable: sweep)
                if sweep { lastSweep = now }
                if let next = try await manager.store.nextSchedulerMoment(grace: Self.dispatchedGraceMillis) {
                    sleepMillis = min(max(next - Clock.nowMillis(), Self.shortestSleepMillis), Self.longestSleepMillis)
                }
            } catch {
                manager.logger.warning("scheduling pass failed", metadata: ["error": "\(DatabaseErrors.describe(error))"])
                sleepMillis = 1_000
            }
            let seconds = Double(sleepMillis) / 1000
            _ = await cancelWhenGracefulShutdown {
                await manager.hub.wait(Self.wakeKey, since: version, seconds: seconds)
            }
        }
    }

    /// One pass: due runs are queued (their agents' polls woken), overdue ones expired, and (with
    /// `sweepUndeliverable`) those of retired agents ended.
    func pass(now: Int64, sweepUndeliverable: Bool = true) async throws {
        // Recurring tasks whose occurrence came create their runs (queued at once).
        let service = TaskService(store: manager.store, isOnline: { [manager] in manager.isOnline($0) })
        var fired: [RunRecord] = []
        // All that is due now, a few hundred tasks at a time (a minute boundary may bring thousands).
        var after: (nextFireAt: Int64, id: String)?
        while true {
            let due = try await manager.store.dueRecurringTasks(now: now, after: after, limit: 500)
            guard let last = due.last, let lastFire = last.recurrence?.nextFireAt else { break }
            after = (lastFire, last.id)
            fired += try await service.fire(due, now: now) { task, error in
                manager.logger.error("a recurring task could not fire", metadata: ["task.id": "\(task.id)", "error": "\(error)"])
            }
        }
        let due = try await manager.store.queueDueRuns(now: now) + fired
        let expired = try await manager.store.expireOverdueRuns(now: now, grace: Self.dispatchedGraceMillis)
        let stranded = sweepUndeliverable ? try await manager.store.endUndeliverableRuns(now: now) : []
        let touched = due + expired + stranded
        guard !touched.isEmpty else { return }
        var keys = Set(touched.map { Manager.agentKey($0.agentID) })
        keys.formUnion(touched.map { Manager.zoneKey($0.zoneID) })
        keys.formUnion(touched.map { Manager.runKey($0.id) })
        await manager.hub.signal(keys)
        if !expired.isEmpty {
            manager.logger.info("runs expired before they started", metadata: ["count": "\(expired.count)"])
        }
        if !stranded.isEmpty {
            manager.logger.info("runs of retired agents ended", metadata: ["count": "\(stranded.count)"])
        }
    }
}

extension RunScheduler: CustomStringConvertible {
    /// Service names are logged by the service group: never let the manager's configuration in.
    var description: String { "RunScheduler" }
}
