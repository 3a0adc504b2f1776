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
    /// transaction as the reports (409 `stale-epoch` otherwise, with nothing applied), accepts its
    /// members' reports only when each is signed by that member (`relayed`), and answers with the work of
    /// the members it hears from (`liveMembers`), in one transaction for the whole zone, with
    /// parameters sealed to each target agent, and each member's acknowledgements signed for it.
    func sync(agent: AgentRecord, request: SyncRequest) async throws -> SyncResponse {
        let now = Clock.nowMillis()
        let fence = request.epoch.map { Fence(zoneID: agent.zoneID, primaryID: agent.id, epoch: $0, leaseDuration: config.leaseMillis) }
        guard request.reports.count <= 1 else { throw Problem.invalid("reports", "an agent sends one report, its own") }
        guard request.reports.allSatisfy({ $0.agentId == agent.id }) else {
            throw Problem.forbidden("an agent may only report for itself; a primary relays its members' signed reports in 'relayed'")
        }
        let relayed = request.relayed ?? []
        guard relayed.isEmpty || fence != nil else { throw Problem.forbidden("only the zone's primary relays members' reports") }
        guard relayed.count <= 10_000, (request.liveMembers?.count ?? 0) <= 100_000 else {
            throw Problem.invalid("relayed", "at most 10000 relayed reports and 100000 live members per sync")
        }
        let ownReports = request.reports.map(Self.trimmed)
        for report in ownReports { try Self.validate(report) }
        if let facts = ownReports.first?.facts { try Self.validate(facts) }

        // The zone's active members, once per exchange (their keys check relayed reports; the list is the membership).
        if let fence, !relayed.isEmpty,
            !(try await store.holdsLease(zoneID: fence.zoneID, agentID: agent.id, epoch: fence.epoch, now: now))
        {
            // Nothing a non-primary relays is even looked at (no signature checks, no events).
            throw StoreError.staleEpoch("epoch \(fence.epoch) is not the zone's current lease; step down")
        }
        let members: [String: AgentRecord]
        if fence != nil {
            members = try await zoneMembers.members(of: agent.zoneID, store: store)
        } else {
            members = [agent.id: agent]
        }
        var batches: [ReportedBatch] = ownReports.map(Self.batch)
        var forgeries: [String] = []
        var invalid: [String: [String: String]] = [:]
        for blob in relayed {
            guard blob.signer != agent.id, let member = members[blob.signer], let key = Keys.signing(member.publicKey) else {
                // Not (or no longer) an active member, say retired while its report travelled: nothing to verify
                // it with, and nothing it says counts.
                logger.info("dropped a relayed report of a non-member", metadata: ["signer": "\(blob.signer.prefix(36))"])
                continue
            }
            do {
                let report = Self.trimmed(try blob.open(AgentReport.self, domain: SignedBlob.Domain.report, key: key))
                guard report.agentId == member.id else { throw SignedBlob.Invalid(description: "the report names another agent") }
                try Self.validate(report)
                batches.append(Self.batch(report))
            } catch let problem as Problem {
                // A genuine report the manager cannot take (out of bounds): refuse its items for good, signed
                // for the member, so that it does not send them forever.
                logger.warning("refused a relayed report", metadata: ["agent.id": "\(member.id)", "reason": "\(problem.document.detail)"])
                if let report = try? blob.open(AgentReport.self, domain: SignedBlob.Domain.report, key: key) {
                    invalid[member.id] = Set(report.started.map(\.runId) + report.logs.map(\.runId) + report.results.map(\.runId))
                        .filter(Validation.isValidID).reduce(into: [:]) { $0[$1] = "refused: \(problem.document.detail)" }
                }
            } catch {
                forgeries.append("a report for \(member.id) whose signature does not verify: \(error)")
            }
        }
        for forgery in forgeries.prefix(10) {
            logger.error("the zone's primary relayed a forged report", metadata: ["agent.id": "\(agent.id)", "detail": "\(forgery)"])
            var detail = ["note": String(forgery.prefix(500))]
            if let epoch = fence?.epoch { detail["epoch"] = String(epoch) }
            try? await store.record(
                .agentRelayForgery, actor: EventActor(kind: .agent, id: agent.id, name: agent.hostname), zoneID: agent.zoneID, subject: agent.id,
                detail: detail, now: now)
        }
        let live = (request.liveMembers ?? members.keys.map { $0 }).filter { members[$0] != nil }
        let reporting = Set(batches.map(\.agentID))
        // Members heard by the primary count as seen; written at most every 2 s per zone, not on every poll.
        var touchDue = false
        if fence != nil { touchDue = await zoneMembers.shouldTouch(agent.zoneID, now: now) }
        let seenOnly = touchDue ? live.filter { !reporting.contains($0) && $0 != agent.id } : []
        if batches.isEmpty || !reporting.contains(agent.id) {
            batches.append(ReportedBatch(agentID: agent.id, started: [], logs: [], results: []))
        }
        let outcomes = try await store.applyReports(batches, now: now, fence: fence, alsoSeen: seenOnly, zoneID: agent.zoneID)
        var acks = SyncAcks()
        var memberAcks: [String: SignedBlob] = [:]
        var touched: Set<String> = []
        for (batch, outcome) in zip(batches, outcomes) {
            var these = SyncAcks()
            these.started = outcome.startedAcked
            these.recovering = outcome.recoveringAcked.isEmpty ? nil : outcome.recoveringAcked
            these.logs = .init(additionalProperties: outcome.logsAcked)
            these.results = outcome.resultsAcked
            these.rejected = .init(additionalProperties: outcome.rejected)
            for (runID, reason) in outcome.rejected {
                logger.warning("rejected an agent report", metadata: ["agent.id": "\(batch.agentID)", "run.id": "\(runID)", "reason": "\(reason)"])
            }
            if batch.agentID == agent.id {
                acks = these
            } else {
                memberAcks[batch.agentID] = try SignedBlob.sign(
                    MemberAcks(agentId: batch.agentID, acks: these), domain: SignedBlob.Domain.acks, signer: "manager", key: config.signingKey)
            }
            touched.formUnion(outcome.changedRuns)
            touched.formUnion(outcome.logsAcked.keys)
        }
        if !touched.isEmpty { await hub.signal(touched.map(Self.runKey)) }
        for (memberID, rejected) in invalid where memberAcks[memberID] == nil {
            memberAcks[memberID] = try SignedBlob.sign(
                MemberAcks(agentId: memberID, acks: SyncAcks(started: [], logs: [:], results: [], rejected: .init(additionalProperties: rejected))), domain: SignedBlob.Domain.acks, signer: "manager",
                key: config.signingKey)
        }

        let key = fence == nil ? Self.agentKey(agent.id) : Self.zoneKey(agent.zoneID)
        // (The lease itself is renewed by the primary's lease requests and by each exchange as it arrives,
        // never by a held poll, so a dead primary's lease runs out.) A primary's poll is held at most 10 s:
        // its members' liveness and the membership it holds are refreshed at least that often.
        let holdMillis = fence == nil ? Int(config.longPollSeconds * 1000) : Int(min(config.longPollSeconds, 10) * 1000)
        let deadline = ContinuousClock.now + .milliseconds(holdMillis)
        // Work only for the members the primary hears from: a run for a member that is down stays queued.
        let recipients = fence == nil ? [agent.id] : Array(Set(live + [agent.id]))
        // Set when a held poll ran out without a signal: nothing changed, so nothing is asked of the store.
        var quiet = false
        // Set when a primary's held poll was woken: it returns even without work, so that a new membership
        // (an agent enrolled or retired) reaches it at once.
        var woke = false
        while true {
            let version = await hub.version(key)
            var work: (runs: [PendingRun], cancels: [(agentID: String, runID: String)]) = ([], [])
            if !quiet {
                if let fence, !(try await store.holdsLease(zoneID: fence.zoneID, agentID: agent.id, epoch: fence.epoch, now: Clock.nowMillis())) {
                    // The lease moved on while this poll was held: hand nothing to a deposed primary.
                    throw StoreError.staleEpoch("epoch \(fence.epoch) is not the zone's current lease; step down")
                }
                work = try await store.takeWork(
                    agentIDs: recipients, zoneID: fence == nil ? nil : agent.zoneID, now: Clock.nowMillis(),
                    redeliverAfter: Int64(config.redeliverAfterSeconds * 1000))
            }
            let remaining = deadline - ContinuousClock.now
            if quiet || (woke && fence != nil) || !work.runs.isEmpty || !work.cancels.isEmpty || !request.wait || remaining <= .zero || Task.isShuttingDownGracefully {
                if !work.runs.isEmpty {
                    await hub.signal(work.runs.map { Self.runKey($0.run.id) })
                }
                let issuedAt = Clock.nowMillis()
                var envelopes: [RunEnvelope] = []
                for pending in work.runs {
                    var envelope = try Self.envelope(pending, issuedAt: issuedAt, lifetime: config.envelopeLifetimeSeconds)
                    let sealKey = members[pending.run.agentID].flatMap { Keys.agreement($0.sealKey) }
                    if let sealKey {
                        envelope = try envelope.sealingParams(to: sealKey)
                    }
                    if !pending.task.credentials.isEmpty {
                        // Resolved in the run's zone: a selector task across zones never hands one zone's
                        // credential to another zone's agents (they get their zone's, else the global one).
                        var scoped = pending.task
                        scoped.zoneID = pending.run.zoneID
                        envelope = try envelope.sealingCredentials(
                            try await credentialValues(of: scoped), names: pending.task.credentials, to: sealKey)
                    }
                    envelopes.append(try envelope.signed(with: config.signingKey))
                }
                let cancels = try work.cancels.map { try CancelOrder(agentId: $0.agentID, runId: $0.runID, signature: "").signed(with: config.signingKey) }
                var membership: SignedBlob?
                if let fence {
                    let signed = try await memberships.signed(
                        Membership(
                            zoneId: agent.zoneID, primary: agent.id, epoch: fence.epoch,
                            members: members.values.sorted { ($0.enrolledAt, $0.id) < ($1.enrolledAt, $1.id) }.map {
                                Member(
                                    agentId: $0.id, publicKey: $0.publicKey, peerAddress: $0.peerAddress, canReachManager: $0.managerRoute,
                                    priority: $0.priority)
                            }, issuedAt: 0), key: config.signingKey)
                    if signed.digest != request.membershipDigest { membership = signed }
                }
                return SyncResponse(
                    acks: acks, runs: envelopes, cancels: cancels, heartbeatSeconds: config.heartbeatSeconds, signedMembership: membership,
                    managerTime: Clock.nowMillis(), memberAcks: memberAcks.isEmpty ? nil : .init(additionalProperties: memberAcks))
            }
            let seconds = Double(remaining.components.seconds) + Double(remaining.components.attoseconds) / 1e18
            // A manager that stops answers held polls at once instead of making shutdown wait for them.
            let signaled = (try? await cancelWhenGracefulShutdown { await hub.wait(key, since: version, seconds: seconds) }) ?? true
            if Task.isCancelled && !Task.isShuttingDownGracefully { throw CancellationError() }
            quiet = !signaled && ContinuousClock.now >= deadline
            woke = signaled
        }
    }

    static func batch(_ report: AgentReport) -> ReportedBatch {
        var batch = ReportedBatch(
            agentID: report.agentId,
            started: report.started.map { ReportedStart(runID: $0.runId, at: $0.at) },
            logs: report.logs.map { ReportedLog(runID: $0.runId, seq: $0.seq, stream: $0.stream.rawValue, data: $0.data, at: $0.at) },
            results: report.results.map {
                ReportedResult(
                    runID: $0.runId, outcome: $0.outcome, exitCode: $0.exitCode, reason: $0.reason, result: $0.result, finishedAt: $0.finishedAt)
            },
            clockSkewMillis: report.clockSkewMillis.map { max(-10 * 365 * 86_400_000, min(10 * 365 * 86_400_000, $0)) },
            labels: report.facts?.labels?.additionalProperties)
        batch.recovering = (report.recovering ?? []).map { ReportedStart(runID: $0.runId, at: $0.at) }
        return batch
    }

    /// The report with oversized texts cut to the limits (at a character boundary, marked), so that an
    /// agent's long output or binary result never blocks its reports.
    static func trimmed(_ report: AgentReport) -> AgentReport {
        var report = report
        let mark = "\n[cut by the manager: too long]"
        for index in report.logs.indices where report.logs[index].data.utf8.count > maxChunkBytes {
            report.logs[index].data = report.logs[index].data.truncatedUTF8(to: maxChunkBytes)
        }
        for index in report.results.indices {
            if let text = report.results[index].result, text.utf8.count > 64 * 1024 {
                report.results[index].result = text.truncatedUTF8(to: 64 * 1024 - mark.utf8.count) + mark
            }
            if let reason = report.results[index].reason, reason.count > 4096 {
                report.results[index].reason = String(reason.prefix(4000)) + mark
            }
        }
        return report
    }

    static func validate(_ report: AgentReport) throws {
        // A relayed member's facts (its labels) are checked as the agent's own are.
        if let facts = report.facts { try validate(facts) }
        let count = report.started.count + (report.recovering?.count ?? 0) + report.logs.count + report.results.count
        guard count <= maxItemsPerReport else { throw Problem.invalid("reports", "at most \(maxItemsPerReport) items per sync") }
        for (index, chunk) in report.logs.enumerated() {
            // The stream is one of stdout, stderr and system: the generated decoder refuses any other.
            guard Validation.isValidID(chunk.runId), chunk.seq >= 1, chunk.data.utf8.count <= maxChunkBytes else {
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
        for (index, recovery) in (report.recovering ?? []).enumerated() where !Validation.isValidID(recovery.runId) {
            throw Problem.invalid("reports[0].recovering[\(index)].runId", "is not a run id")
        }
    }

    /// A task's recover steps for its envelopes: nil when it has none (the signed bytes of envelopes
    /// without recover steps are unchanged).
    static func recoverSteps(_ task: TaskRecord) throws -> [StepSpec]? {
        let steps = try JSONDecoder().decode([StepSpec].self, from: Data(task.recoverJSON.utf8))
        return steps.isEmpty ? nil : steps.map(\.withLegacyRefusal)
    }

    static func envelope(_ pending: PendingRun, issuedAt: Int64, lifetime: Int64) throws -> RunEnvelope {
        RunEnvelope(
            runId: pending.run.id, taskId: pending.task.id, agentId: pending.run.agentID, zone: pending.run.zoneName,
            steps: try JSONDecoder().decode([StepSpec].self, from: Data(pending.task.stepsJSON.utf8)).map(\.withLegacyRefusal),
            params: .init(additionalProperties: try JSONDecoder().decode([String: String].self, from: Data(pending.task.paramsJSON.utf8))),
            timeoutSeconds: pending.task.timeoutSeconds, issuedAt: issuedAt,
            expiresAt: min(issuedAt + lifetime * 1000, pending.run.deliverBy ?? .max), deliverBy: pending.run.deliverBy,
            recover: try Self.recoverSteps(pending.task), signature: "")
    }
}


/// The zone memberships the manager signed, so that an unchanged list is not signed again on every poll.
actor MembershipCache {
    private var signed: [String: (membership: Membership, blob: SignedBlob)] = [:]

    /// The signed list; a list that changed is signed with the time of signing (`issuedAt`), never
    /// earlier than the zone's previous one.
    func signed(_ membership: Membership, key: Curve25519.Signing.PrivateKey) throws -> SignedBlob {
        var list = membership
        if let cached = signed[list.zoneId] {
            list.issuedAt = cached.membership.issuedAt
            if cached.membership == list { return cached.blob }
            list.issuedAt = max(Clock.nowMillis(), cached.membership.issuedAt + 1)
        } else {
            list.issuedAt = Clock.nowMillis()
        }
        let blob = try SignedBlob.sign(list, domain: SignedBlob.Domain.membership, signer: "manager", key: key)
        signed[list.zoneId] = (list, blob)
        return blob
    }
}

/// The active members of each zone, read from the store at most once a second (a zone's primary polls
/// often, with the whole zone's membership at stake), and forgotten at once when an agent of the zone
/// enrolls, retires or moves. Also when the members a primary hears from were last written as seen.
actor ZoneMembers {
    private var cached: [String: (at: ContinuousClock.Instant, members: [String: AgentRecord])] = [:]
    private var touched: [String: Int64] = [:]

    func members(of zoneID: String, store: Store) async throws -> [String: AgentRecord] {
        if let entry = cached[zoneID], ContinuousClock.now - entry.at < .seconds(1) { return entry.members }
        let members = Dictionary(try await store.activeAgents(zoneID: zoneID).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        cached[zoneID] = (.now, members)
        return members
    }

    func invalidate(_ zoneID: String) {
        cached[zoneID] = nil
    }

    /// Whether the zone's heard members are due to be written as seen (every 2 s at most).
    func shouldTouch(_ zoneID: String, now: Int64) -> Bool {
        if let last = touched[zoneID], now - last < 2_000, now >= last { return false }
        touched[zoneID] = now
        return true
    }
}

extension StepSpec {
    /// A command step with the script that agents predating built-in commands run in its place: it fails
    /// with a message, so that such an agent reports the run failed with the reason instead of running
    /// something else (newer agents run the command and ignore the script).
    var withLegacyRefusal: StepSpec {
        guard let command, script == nil else { return self }
        var step = self
        let name = command.filter { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" }
        step.script = "echo 'klevr: this agent does not know built-in commands (\(name)); upgrade it' >&2; exit 64"
        return step
    }
}
