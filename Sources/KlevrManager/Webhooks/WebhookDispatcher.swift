import AsyncHTTPClient
import Foundation
import KlevrCore
import KlevrStore
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization

/// Delivers the typed events to webhooks (and tasks' callback URLs), apart from the API and the sync path.
///
/// Two loops share one HTTP client:
/// - the follower reads the event log after a cursor stored in the database, queues one delivery per event and
///   interested webhook, and moves the cursor in the same transaction (compare-and-set): a restart, or a second
///   manager on the same database, neither loses nor repeats a delivery;
/// - the deliverer claims due deliveries (a lease, compare-and-set), sends at most
///   ``ManagerConfig/webhookConcurrency`` at once, each signed afresh (same `webhook-id`, new timestamp) with a
///   deadline of ``ManagerConfig/webhookTimeoutSeconds``, records every attempt, and schedules the next one
///   by ``ManagerConfig/webhookRetry`` until a 2xx answer or the end of the retry window.
///
/// On graceful shutdown both stop taking new work; attempts in flight finish (within their deadline) and are
/// recorded. An attempt cut by a crash is due again when its lease ends.
struct WebhookDispatcher: Service {
    let manager: Manager
    /// Events read per pass of the follower.
    static let batch = 500
    /// The shortest time between two passes of the follower.
    static let followerSpacing = Duration.milliseconds(100)
    /// The most of a receiver's answer that is read (and kept, shortened, in a failed attempt's error).
    static let responseReadLimit = 4096
    /// The longest error text stored with an attempt.
    static let errorLimit = 1000

    var store: Store { manager.store }
    var config: ManagerConfig { manager.config }
    /// How long a claimed delivery is reserved: past it, a delivery whose attempt was cut is due again.
    var leaseMillis: Int64 { Int64(config.webhookTimeoutSeconds * 1000) + 30_000 }

    func run() async throws {
        await cancelWhenGracefulShutdown { await manager.prepared.wait() }
        guard !Task.isShuttingDownGracefully, !Task.isCancelled else { return }
        var configuration = HTTPClient.Configuration()
        // A redirect is an answer like any other non-2xx one: the manager calls only the URL an admin gave.
        configuration.redirectConfiguration = .disallow
        configuration.timeout = .init(connect: .seconds(5))
        configuration.decompression = .disabled
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        await withDiscardingTaskGroup { group in
            group.addTask { await follow() }
            group.addTask { await deliver(client: client) }
        }
        try? await client.shutdown()
    }

    // MARK: - Following the event log

    func follow() async {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let version = await manager.hub.version(Store.eventsKey)
            var more = false
            do {
                more = try await followPass(now: Clock.nowMillis())
            } catch {
                manager.logger.warning("queueing webhook deliveries failed", metadata: ["error": "\(DatabaseErrors.describe(error))"])
            }
            if !more {
                await cancelWhenGracefulShutdown {
                    // At most ten passes a second, however fast events come (each pass takes what came meanwhile,
                    // up to a batch): the follower costs the database little under a burst of runs.
                    try? await Task.sleep(for: Self.followerSpacing)
                    _ = await manager.hub.wait(Store.eventsKey, since: version, seconds: config.webhookPollSeconds)
                }
            }
        }
    }

    /// Queues the deliveries of the next events after the cursor. Returns whether more events may follow.
    @discardableResult
    func followPass(now: Int64) async throws -> Bool {
        let cursor = try await store.webhookCursor()
        let events = try await store.events(EventFilter(), after: cursor, limit: Self.batch)
        guard let last = events.last else { return false }
        let taskIDs = Set(events.compactMap { $0.kind.rawValue.hasPrefix("run.") ? $0.detail["task"] : nil })
        let webhooks = try await store.activeWebhooks(taskIDs: taskIDs)
        var deliveries: [NewWebhookDelivery] = []
        for event in events {
            let wanting = webhooks.filter { $0.wants(event) }
            guard !wanting.isEmpty else { continue }
            do {
                let payload = try WebhookPayload.render(event)
                deliveries += wanting.map { NewWebhookDelivery(webhookID: $0.id, eventID: event.id, eventKind: event.kind.rawValue, payload: payload) }
            } catch {
                // One event the API cannot show must not stop every later delivery.
                manager.logger.error("an event cannot be delivered to webhooks", metadata: ["event.id": "\(event.id)", "error": "\(error)"])
            }
        }
        try await store.enqueueWebhookDeliveries(deliveries, from: cursor, to: last.id, now: now)
        return events.count == Self.batch
    }

    // MARK: - Delivering

    func deliver(client: HTTPClient) async {
        let inFlight = InFlight()
        let limit = max(1, config.webhookConcurrency)
        await withDiscardingTaskGroup { group in
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                let version = await manager.hub.version(Store.webhookDeliveriesKey)
                let free = limit - inFlight.count.withLock { $0 }
                var jobs: [WebhookJob] = []
                if free > 0 {
                    do {
                        jobs = try await store.webhookJobs(now: Clock.nowMillis(), limit: free, leaseMillis: leaseMillis)
                    } catch {
                        manager.logger.warning("claiming webhook deliveries failed", metadata: ["error": "\(DatabaseErrors.describe(error))"])
                    }
                }
                for job in jobs {
                    inFlight.count.withLock { $0 += 1 }
                    group.addTask {
                        await attempt(job, client: client)
                        inFlight.count.withLock { $0 -= 1 }
                        // A free slot: the loop looks for more.
                        await manager.hub.signal([Store.webhookDeliveriesKey])
                    }
                }
                if free > 0 && jobs.count == free { continue }
                // Sleep until the next retry is due, a new delivery is queued (signalled), or the poll interval
                // passes (another manager on the same database may have queued one).
                var seconds = config.webhookPollSeconds
                if free > 0, jobs.isEmpty, let due = try? await store.nextWebhookAttemptAt() {
                    seconds = min(seconds, max(0.01, Double(due - Clock.nowMillis()) / 1000))
                }
                await cancelWhenGracefulShutdown { [seconds] in
                    _ = await manager.hub.wait(Store.webhookDeliveriesKey, since: version, seconds: seconds)
                }
            }
        }
    }

    /// Sends one attempt of a claimed delivery and records it with what follows.
    func attempt(_ job: WebhookJob, client: HTTPClient) async {
        let startedAt = Clock.nowMillis()
        let clock = ContinuousClock()
        let start = clock.now
        var statusCode: Int?
        var failure: String?
        do {
            let secret = try manager.openWebhookSecret(job.sealedSecret, webhookID: job.webhookID)
            let body = Array(job.payload.utf8)
            var request = HTTPClientRequest(url: job.url)
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/json")
            request.headers.add(name: "user-agent", value: "klevr-webhooks/1")
            for header in StandardWebhooks.headers(secret: secret, id: job.messageID, timestamp: startedAt / 1000, body: body) {
                request.headers.add(name: header.name, value: header.value)
            }
            request.body = .bytes(ByteBuffer(bytes: body))
            let response = try await client.execute(request, timeout: .milliseconds(Int64(config.webhookTimeoutSeconds * 1000)))
            statusCode = Int(response.status.code)
            let excerpt = try await Self.read(response.body, limit: Self.responseReadLimit)
            if !(200..<300).contains(response.status.code) {
                failure = "HTTP \(response.status.code)" + (excerpt.isEmpty ? "" : ": " + excerpt)
            }
        } catch {
            failure = "\(error)"
        }
        let elapsed = clock.now - start
        let duration = elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
        let number = job.attemptsMade + 1
        let record = WebhookAttemptRecord(
            attempt: number, at: startedAt, statusCode: statusCode, durationMillis: duration, error: failure.map(Self.bounded))
        let next =
            failure == nil
            ? nil
            : config.webhookRetry.nextAttempt(
                afterAttempt: number, firstAttemptAt: job.firstAttemptAt ?? startedAt, lastAttemptAt: startedAt, unit: Double.random(in: 0..<1))
        do {
            let recorded = try await store.recordWebhookAttempt(job, record, succeeded: failure == nil, nextAttemptAt: next)
            if !recorded {
                manager.logger.info("a webhook delivery moved on during its attempt", metadata: ["delivery.id": "\(job.deliveryID)"])
            }
        } catch {
            manager.logger.warning(
                "recording a webhook attempt failed", metadata: ["delivery.id": "\(job.deliveryID)", "error": "\(DatabaseErrors.describe(error))"])
        }
        if let failure {
            manager.logger.info(
                "webhook delivery attempt failed",
                metadata: ["delivery.id": "\(job.deliveryID)", "attempt": "\(number)", "error": "\(Self.bounded(failure))", "retry": "\(next != nil)"])
        }
    }

    /// Reads at most `limit` bytes of an answer's body (the rest is not read) as printable text.
    static func read(_ body: HTTPClientResponse.Body, limit: Int) async throws -> String {
        var bytes: [UInt8] = []
        for try await chunk in body {
            bytes += chunk.readableBytesView.prefix(limit - bytes.count)
            if bytes.count >= limit { break }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// At most ``errorLimit`` characters, control characters replaced.
    static func bounded(_ text: String) -> String {
        let printable = String(String.UnicodeScalarView(text.unicodeScalars.map { $0.properties.generalCategory == .control ? " " : $0 }))
        return printable.count > errorLimit ? String(printable.prefix(errorLimit - 1)) + "…" : printable
    }
}

/// The number of attempts in flight, shared by the deliverer loop and its attempts.
final class InFlight: Sendable {
    let count = Mutex(0)
}

extension WebhookDispatcher: CustomStringConvertible {
    /// Service names are logged by the service group: never let the manager's configuration in.
    var description: String { "WebhookDispatcher" }
}
