import KlevrCore

/// A stored webhook: where events of some kinds (and zone) are delivered. Its secret is stored sealed and is
/// not part of the record; ``Store/webhookJobs(now:limit:leaseMillis:)`` hands it to the deliverer.
public struct WebhookRecord: Sendable, Equatable {
    public var id: String
    public var url: String
    public var description: String
    public var kinds: EventKindFilter
    /// The zone whose events are delivered; nil: every event, also those of no zone.
    public var zoneID: String?
    /// The zone's name, while it exists.
    public var zoneName: String?
    public var enabled: Bool
    public var createdAt: Int64
    public var updatedAt: Int64
    public var createdBy: String
    /// Only events with a larger id are delivered (the last event when the webhook was created).
    public var startEventID: Int64
    /// The task whose callback URL this is (its run events only); nil for a webhook of the API.
    public var taskID: String?

    public init(
        id: String, url: String, description: String, kinds: EventKindFilter, zoneID: String?, zoneName: String? = nil, enabled: Bool,
        createdAt: Int64, updatedAt: Int64, createdBy: String, startEventID: Int64 = 0, taskID: String? = nil
    ) {
        self.id = id
        self.url = url
        self.description = description
        self.kinds = kinds
        self.zoneID = zoneID
        self.zoneName = zoneName
        self.enabled = enabled
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.createdBy = createdBy
        self.startEventID = startEventID
        self.taskID = taskID
    }

    /// Whether an event is for this webhook: after its creation, of a selected kind and zone, and for a
    /// task's callback, a run event of that task.
    public func wants(_ event: EventRecord) -> Bool {
        guard enabled, event.id > startEventID, kinds.matches(event.kind) else { return false }
        if let zoneID, event.zoneID != zoneID { return false }
        if let taskID, event.detail["task"] != taskID { return false }
        return true
    }
}

/// Where a delivery stands.
public enum WebhookDeliveryStatus: String, Sendable, CaseIterable {
    /// Not delivered yet; attempted when `nextAttemptAt` comes.
    case pending
    /// A 2xx answer was received.
    case succeeded
    /// Every attempt failed and the retry window has passed.
    case failed
}

/// One attempt to deliver.
public struct WebhookAttemptRecord: Sendable, Equatable {
    /// 1 for the first attempt.
    public var attempt: Int
    public var at: Int64
    /// The HTTP status of the answer; nil when there was none (connection refused, timeout).
    public var statusCode: Int?
    public var durationMillis: Int64
    /// Why it failed; nil for a 2xx answer.
    public var error: String?

    public init(attempt: Int, at: Int64, statusCode: Int?, durationMillis: Int64, error: String?) {
        self.attempt = attempt
        self.at = at
        self.statusCode = statusCode
        self.durationMillis = durationMillis
        self.error = error
    }
}

/// A stored delivery of one event to one webhook, with its attempts.
public struct WebhookDeliveryRecord: Sendable, Equatable {
    public var id: String
    public var webhookID: String
    public var eventID: Int64
    public var eventKind: String
    /// The `webhook-id` header: the same for every attempt, and for a redelivery of the same event.
    public var messageID: String
    public var status: WebhookDeliveryStatus
    public var attempts: [WebhookAttemptRecord]
    public var createdAt: Int64
    public var nextAttemptAt: Int64?
    /// The delivery this one repeats (a redelivery).
    public var redeliveryOf: String?
}

/// A delivery to make now, claimed by one deliverer until `claimedUntil`.
public struct WebhookJob: Sendable, Equatable {
    public var deliveryID: String
    public var webhookID: String
    public var messageID: String
    /// The exact body to send.
    public var payload: String
    public var url: String
    /// The webhook's secret as sealed at rest (base64).
    public var sealedSecret: String
    /// Attempts made before this one.
    public var attemptsMade: Int
    public var firstAttemptAt: Int64?
    public var claimedUntil: Int64
}

/// A delivery to enqueue.
public struct NewWebhookDelivery: Sendable, Equatable {
    public var webhookID: String
    public var eventID: Int64
    public var eventKind: String
    public var payload: String

    public init(webhookID: String, eventID: Int64, eventKind: String, payload: String) {
        self.webhookID = webhookID
        self.eventID = eventID
        self.eventKind = eventKind
        self.payload = payload
    }
}

/// A task's callback URL as stored with the task: a webhook of its run events only, not listed with the others.
public struct TaskCallback: Sendable, Equatable {
    public var webhookID: String
    public var url: String
    /// The callback's secret sealed for its webhook id (base64).
    public var sealedSecret: String

    public init(webhookID: String, url: String, sealedSecret: String) {
        self.webhookID = webhookID
        self.url = url
        self.sealedSecret = sealedSecret
    }

    /// The webhook row for the task: every run event of that task, whatever its zone.
    func webhook(taskID: String, createdAt: Int64, createdBy: String) throws -> WebhookRecord {
        WebhookRecord(
            id: webhookID, url: url, description: "callback of task \(taskID)", kinds: try EventKindFilter(parsing: ["run"]), zoneID: nil,
            enabled: true, createdAt: createdAt, updatedAt: createdAt, createdBy: createdBy, taskID: taskID)
    }
}

/// Changes to a webhook's fields; nil leaves a field as it is.
public struct WebhookUpdate: Sendable, Equatable {
    public var url: String?
    public var description: String?
    public var kinds: EventKindFilter?
    /// `.some(nil)` removes the zone filter.
    public var zoneID: String??
    public var enabled: Bool?

    public init(url: String? = nil, description: String? = nil, kinds: EventKindFilter? = nil, zoneID: String?? = nil, enabled: Bool? = nil) {
        self.url = url
        self.description = description
        self.kinds = kinds
        self.zoneID = zoneID
        self.enabled = enabled
    }
}
