import Foundation
import Crypto
import KlevrCore
import KlevrStore
import Logging

/// Everything the manager needs to start, built once by `main` (or a test) and passed down.
public struct ManagerConfig: Sendable {
    /// Address to listen on.
    public var host: String
    /// Port to listen on; 0 picks a free one.
    public var port: Int
    public var database: DatabaseURL
    /// The first admin's password when the database has no user yet; nil generates one.
    public var adminPassword: String?
    /// Whether a generated first-admin password must be changed at first login (`klevr up`'s demo admin is exempt).
    public var generatedAdminMustChangePassword: Bool
    /// Seconds between agent heartbeats; three missed ones mark an agent offline.
    public var heartbeatSeconds: Int
    /// How long a sync long-poll is held open when there is nothing to hand out.
    public var longPollSeconds: Double
    /// A dispatched run whose start is not reported in this time is handed out again.
    public var redeliverAfterSeconds: Double
    /// bcrypt cost for passwords (tests lower it).
    public var bcryptCost: UInt8
    /// Session lifetime.
    public var sessionSeconds: Int64
    /// The key that signs every run envelope (agents get its public half at enrollment).
    public var signingKey: Curve25519.Signing.PrivateKey
    /// The master keys that seal stored secrets (credential values, webhook secrets): `master.key` in the
    /// data dir (see ``MasterKeyFiles``); a fresh random key by default (tests).
    public var secretBox: SecretBox
    /// How long a handed-out run envelope stays valid for its agent.
    public var envelopeLifetimeSeconds: Int64
    /// How long a zone primary's lease lasts without renewal.
    public var leaseMillis: Int64
    /// The certificate and key to serve HTTPS with; nil serves plain HTTP.
    public var tls: ManagerTLS?
    /// A TLS proxy in front terminates HTTPS (`--insecure-http`): plain HTTP here, HTTPS for clients.
    public var behindTLSProxy: Bool

    /// Whether clients reach the manager over HTTPS, so that the session cookie is `Secure`.
    public var servesClientsOverTLS: Bool { tls != nil || behindTLSProxy }
    /// A client whose request head is not complete this long after it connected is disconnected.
    public var headerTimeoutSeconds: Double = 10
    /// A client whose request body is not complete this long after its head is disconnected.
    public var bodyTimeoutSeconds: Double = 60
    /// A kept-alive connection that starts no new request this long after its last response is closed.
    public var idleTimeoutSeconds: Double = 30
    /// At most this many connections are open at once; past it, new ones wait in the listen backlog.
    public var maxConnections: Int = 512
    /// When a failed webhook delivery is tried again (tests shorten it).
    public var webhookRetry = WebhookRetryPolicy()
    /// How often the webhook dispatcher looks for new events and due deliveries when nothing wakes it (events
    /// and deliveries of this manager wake it at once, and it sleeps only until the next retry is due).
    public var webhookPollSeconds: Double = 5
    /// The longest a webhook delivery attempt may take (connect, send, answer).
    public var webhookTimeoutSeconds: Double = 10
    /// At most this many webhook deliveries are in flight at once.
    public var webhookConcurrency: Int = 8
    /// Whether the manager runs its scheduler (``RunScheduler``: recurring tasks fired, due runs queued,
    /// overdue ones expired). Always on in `klevr manager`; tests that take the scheduler's passes by hand
    /// at chosen instants turn it off, so that it cannot fire an occurrence on the real clock meanwhile.
    public var runsScheduler: Bool = true
    /// Finished runs (with their output) and finished webhook deliveries are removed this many days after
    /// they ended or were queued, and one-off tasks left without runs with them; 0 keeps them all (see
    /// ``RetentionSweeper``).
    public var runRetentionDays: Int = 90
    /// Events (the event and audit logs) are removed this many days after they happened; 0 keeps them all.
    public var eventRetentionDays: Int = 365
    /// How often the retention sweep runs.
    public var retentionIntervalSeconds: Double = 3600

    /// What the retention sweep removes at `now`.
    public func retentionPolicy(now: Int64) -> RetentionPolicy {
        let day: Int64 = 86_400_000
        return RetentionPolicy(
            runsBefore: runRetentionDays > 0 ? now - Int64(runRetentionDays) * day : nil,
            eventsBefore: eventRetentionDays > 0 ? now - Int64(eventRetentionDays) * day : nil)
    }

    public init(
        host: String = "127.0.0.1", port: Int = 8090, database: DatabaseURL, adminPassword: String? = nil,
        heartbeatSeconds: Int = 5, longPollSeconds: Double = 25, redeliverAfterSeconds: Double = 10, bcryptCost: UInt8 = 12,
        sessionSeconds: Int64 = 12 * 3600, signingKey: Curve25519.Signing.PrivateKey = .init(),
        secretBox: SecretBox = SecretBox(current: .generate()), envelopeLifetimeSeconds: Int64 = 15 * 60,
        leaseMillis: Int64 = 2_500, tls: ManagerTLS? = nil, behindTLSProxy: Bool = false, generatedAdminMustChangePassword: Bool = true
    ) {
        self.tls = tls
        self.behindTLSProxy = behindTLSProxy
        self.generatedAdminMustChangePassword = generatedAdminMustChangePassword
        self.leaseMillis = leaseMillis
        self.signingKey = signingKey
        self.secretBox = secretBox
        self.envelopeLifetimeSeconds = envelopeLifetimeSeconds
        self.host = host
        self.port = port
        self.database = database
        self.adminPassword = adminPassword
        self.heartbeatSeconds = heartbeatSeconds
        self.longPollSeconds = longPollSeconds
        self.redeliverAfterSeconds = redeliverAfterSeconds
        self.bcryptCost = bcryptCost
        self.sessionSeconds = sessionSeconds
    }
}

extension ManagerConfig: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The configuration without its secrets (admin password, signing key), for anything that prints it.
    public var description: String {
        "ManagerConfig(listen: \(tls == nil ? "http" : "https")://\(host):\(port), database: \(database), heartbeat: \(heartbeatSeconds) s, lease: \(leaseMillis) ms)"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(self, children: ["description": description], displayStyle: .struct)
    }
}
