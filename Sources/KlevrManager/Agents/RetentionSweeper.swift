import Foundation
import KlevrCore
import KlevrStore
import Logging
import ServiceLifecycle

/// Keeps the database from growing without bound: at start and then every
/// ``ManagerConfig/retentionIntervalSeconds`` it removes what the retention settings let go (finished runs
/// and their output, finished webhook deliveries, one-off tasks left without runs, old events, expired
/// sessions), in small transactions (see ``Store/prune(_:now:batch:)``).
struct RetentionSweeper: Service {
    let manager: Manager

    func run() async throws {
        await cancelWhenGracefulShutdown { await manager.prepared.wait() }
        let interval = Duration.milliseconds(Int64(max(1, manager.config.retentionIntervalSeconds) * 1000))
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await sweep()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    /// One sweep; a failure is logged and the next sweep tries again.
    @discardableResult
    func sweep(now: Int64 = Clock.nowMillis()) async -> RetentionCounts? {
        do {
            let counts = try await manager.store.prune(manager.config.retentionPolicy(now: now), now: now) {
                !Task.isShuttingDownGracefully && !Task.isCancelled
            }
            if counts.total > counts.sessions {
                manager.logger.info(
                    "retention: removed old history",
                    metadata: [
                        "runs": "\(counts.runs)", "log_chunks": "\(counts.logChunks)", "tasks": "\(counts.tasks)", "events": "\(counts.events)",
                        "webhook_deliveries": "\(counts.deliveries)",
                    ])
            }
            return counts
        } catch {
            manager.logger.warning("retention sweep failed", metadata: ["error": "\(DatabaseErrors.describe(error))"])
            return nil
        }
    }
}

extension RetentionSweeper: CustomStringConvertible {
    var description: String { "RetentionSweeper" }
}
