import Logging
import Crypto
import Foundation
import KlevrAPI
import KlevrCore
import KlevrStore
import ServiceLifecycle

extension Manager {
    /// Limits of one sync request, so that a misbehaving agent cannot exhaust the manager.
    static let maxItemsPerReport = 5_000
    static let maxChunkBytes = 256 * 1024

    /// The sync exchange: store what the agent reports, then answer with runs and cancels for it,
    /// holding the answer (long-poll) while there is nothing to hand out and the agent asked to wait.
    ///
    /// A zone primary sends its lease `epoch`: the manager checks and renews the lease in the same
    /// transaction as each report (409 `stale-epoch` otherwise, with nothing applied), accepts reports
    /// for every agent of its zone, and answers with the work of the whole zone.
    func sync(agent: AgentRecord, request: SyncRequest) async throws -> SyncResponse {
        let now = Clock.nowMillis()
        let fence = request.epoch.map { Fence(zoneID: agent.zoneID, primaryID: agent.id, epoch: $0, leaseDuration: config.leaseMillis) }
        guard request.reports.count <= (fence == nil ? 1 : 10_000) else {
            throw Problem.invalid("reports", "an agent reports for itself only, unless it is its zone's primary")
        }
        var acks = SyncAcks()
        var members: [String: AgentRecord] = [:]
        for report in request.reports {
            if report.agentId != agent.id {
                // Only the zone's primary relays, and only for agents of its zone.
                guard fence != nil else { throw Problem.forbidden("an agent may only report for itself") }
                if members[report.agentId] == nil {
                    guard Validation.isValidID(report.agentId), let member = try await store.agent(id: report.agentId), member.zoneID == agent.zoneID,
                        member.retiredAt == nil
                    else { throw Problem.forbidden("agent \(report.agentId.prefix(36)) is not an active member of this zone") }
                    members[report.agentId] = member
                }
            }
            try Self.validate(report)
            if let facts = report.facts { try Self.validate(facts) }
            let outcome = try await store.applyReport(
                agentID: report.agentId,
                started: report.started.map { ReportedStart(runID: $0.runId, at: $0.at) },
                logs: report.logs.map { ReportedLog(runID: $0.runId, seq: $0.seq, stream: $0.stream, data: $0.data, at: $0.at) },
                results: report.results.map {
                    ReportedResult(
                        runID: $0.runId, outcome: $0.outcome, exitCode: $0.exitCode, reason: $0.reason, result: $0.result,
                        finishedAt: $0.finishedAt)
                },
                now: now, fence: fence)
            acks.started += outcome.startedAcked
            acks.logs.merge(outcome.logsAcked) { max($0, $1) }
            acks.results += outcome.resultsAcked
            acks.rejected.merge(outcome.rejected) { first, _ in first }
            for (runID, reason) in outcome.rejected {
                logger.warning("rejected an agent report", metadata: ["agent.id": "\(report.agentId)", "run.id": "\(runID)", "reason": "\(reason)"])
            }
            let touched = Set(outcome.changedRuns + Array(outcome.logsAcked.keys))
            if !touched.isEmpty { await hub.signal(touched.map(Self.runKey)) }
        }
        if request.reports.isEmpty {
            if fence != nil {
                _ = try await store.applyReport(agentID: agent.id, started: [], logs: [], results: [], now: now, fence: fence)
            } else {
                try await store.touchAgent(id: agent.id, now: now)
            }
        }
        let key = fence == nil ? Self.agentKey(agent.id) : Self.zoneKey(agent.zoneID)
        // A primary's poll is short (a third of its lease): the lease is renewed only by requests that
        // arrive, never by a held poll whose client may be gone, so a dead primary's lease runs out.
        let holdMillis = fence == nil ? Int(config.longPollSeconds * 1000) : Int(config.leaseMillis / 3)
        let deadline = ContinuousClock.now + .milliseconds(holdMillis)
        while true {
            let version = await hub.version(key)
            if let fence, !(try await store.holdsLease(zoneID: fence.zoneID, agentID: agent.id, epoch: fence.epoch, now: Clock.nowMillis())) {
                // The lease moved on while this poll was held: hand nothing to a deposed primary.
                throw StoreError.staleEpoch("epoch \(fence.epoch) is not the zone's current lease; step down")
            }
            var runs: [PendingRun] = []
            var cancels: [CancelOrder] = []
            let recipients = fence == nil ? [agent.id] : try await store.activeAgents(zoneID: agent.zoneID).map(\.id)
            for recipient in recipients {
                let work = try await store.takeWork(
                    agentID: recipient, now: Clock.nowMillis(), redeliverAfter: Int64(config.redeliverAfterSeconds * 1000))
                runs += work.runs
                cancels += work.cancels.map { CancelOrder(agentId: recipient, runId: $0) }
            }
            let remaining = deadline - ContinuousClock.now
            if !runs.isEmpty || !cancels.isEmpty || !request.wait || remaining <= .zero || Task.isShuttingDownGracefully {
                if !runs.isEmpty {
                    await hub.signal(runs.map { Self.runKey($0.run.id) })
                }
                let issuedAt = Clock.nowMillis()
                let envelopes = try runs.map {
                    try Self.envelope($0, issuedAt: issuedAt, lifetime: config.envelopeLifetimeSeconds).signed(with: config.signingKey)
                }
                var membership: Membership?
                if let fence {
                    let members = try await store.activeAgents(zoneID: agent.zoneID).map {
                        Member(agentId: $0.id, peerAddress: $0.peerAddress, canReachManager: $0.managerRoute, priority: $0.priority)
                    }
                    membership = Membership(primary: agent.id, epoch: fence.epoch, members: members)
                }
                return SyncResponse(
                    acks: acks, runs: envelopes, cancels: cancels, heartbeatSeconds: config.heartbeatSeconds, membership: membership)
            }
            let seconds = Double(remaining.components.seconds) + Double(remaining.components.attoseconds) / 1e18
            // A manager that stops answers held polls at once instead of making shutdown wait for them.
            _ = try? await cancelWhenGracefulShutdown { await hub.wait(key, since: version, seconds: seconds) }
            if Task.isCancelled && !Task.isShuttingDownGracefully { throw CancellationError() }
        }
    }

    static func validate(_ report: AgentReport) throws {
        let count = report.started.count + report.logs.count + report.results.count
        guard count <= maxItemsPerReport else { throw Problem.invalid("reports", "at most \(maxItemsPerReport) items per sync") }
        for (index, chunk) in report.logs.enumerated() {
            guard Validation.isValidID(chunk.runId), chunk.seq >= 1, chunk.data.utf8.count <= maxChunkBytes,
                ["stdout", "stderr", "system"].contains(chunk.stream)
            else {
                throw Problem.invalid("reports[0].logs[\(index)]", "needs a run id, seq >= 1, stream stdout|stderr|system, data <= 256 KiB")
            }
        }
        for (index, result) in report.results.enumerated() {
            guard Validation.isValidID(result.runId), (result.result?.utf8.count ?? 0) <= 64 * 1024, (result.reason?.count ?? 0) <= 4096 else {
                throw Problem.invalid("reports[0].results[\(index)]", "needs a run id, result <= 64 KiB, reason <= 4096 characters")
            }
        }
        for (index, start) in report.started.enumerated() where !Validation.isValidID(start.runId) {
            throw Problem.invalid("reports[0].started[\(index)].runId", "is not a run id")
        }
    }

    static func envelope(_ pending: PendingRun, issuedAt: Int64, lifetime: Int64) throws -> RunEnvelope {
        RunEnvelope(
            runId: pending.run.id, taskId: pending.task.id, agentId: pending.run.agentID, zone: pending.task.zoneName,
            steps: try JSONDecoder().decode([StepSpec].self, from: Data(pending.task.stepsJSON.utf8)),
            params: try JSONDecoder().decode([String: String].self, from: Data(pending.task.paramsJSON.utf8)),
            timeoutSeconds: pending.task.timeoutSeconds, issuedAt: issuedAt, expiresAt: issuedAt + lifetime * 1000)
    }
}
