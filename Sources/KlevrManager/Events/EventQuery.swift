import KlevrAPI
import OpenAPIRuntime

/// What `GET /api/v1/events` and `GET /api/v1/audit` were asked (their generated inputs have the same
/// fields under different types).
struct EventQuery {
    var kind: String?
    var zone: String?
    var subject: String?
    var actor: String?
    var since: Int64?
    var after: Int64?
    var follow: Bool?
    var limit: Int?
    var cursor: String?
    var lastEventID: Int64?
    /// The Accept header ranks `text/event-stream` above `application/json`.
    var prefersStream: Bool
    /// The Accept header admits `text/event-stream`.
    var acceptsStream: Bool

    init<Accept: AcceptableProtocol>(
        kind: String?, zone: String?, subject: String?, actor: String?, since: Int64?, after: Int64?, follow: Bool?, limit: Int?,
        cursor: String?, lastEventID: Int64?, accept: [AcceptHeaderContentType<Accept>]
    ) {
        self.kind = kind
        self.zone = zone
        self.subject = subject
        self.actor = actor
        self.since = since
        self.after = after
        self.follow = follow
        self.limit = limit
        self.cursor = cursor
        self.lastEventID = lastEventID
        let stream = Self.quality(of: "text/event-stream", in: accept)
        self.prefersStream = stream > 0 && stream > Self.quality(of: "application/json", in: accept)
        self.acceptsStream = stream > 0
    }

    init(_ query: Operations.ListEvents.Input.Query, lastEventID: Int64?, accept: [AcceptHeaderContentType<Operations.ListEvents.AcceptableContentType>]) {
        self.init(
            kind: query.kind, zone: query.zone, subject: query.subject, actor: query.actor, since: query.since, after: query.after,
            follow: query.follow, limit: query.limit, cursor: query.cursor, lastEventID: lastEventID, accept: accept)
    }

    init(_ query: Operations.AuditLog.Input.Query, lastEventID: Int64?, accept: [AcceptHeaderContentType<Operations.AuditLog.AcceptableContentType>]) {
        self.init(
            kind: query.kind, zone: query.zone, subject: query.subject, actor: query.actor, since: query.since, after: query.after,
            follow: query.follow, limit: query.limit, cursor: query.cursor, lastEventID: lastEventID, accept: accept)
    }

    /// The id to list or stream after: `after`, else `Last-Event-ID` (a reconnecting stream), else none.
    func position() throws -> Int64? {
        if let after {
            guard after >= 0 else { throw Problem.invalid("after", "must be an event id (an integer >= 0)") }
            return after
        }
        if let lastEventID {
            guard lastEventID >= 0 else { throw Problem.invalid("Last-Event-ID", "must be an event id (an integer >= 0)") }
            return lastEventID
        }
        return nil
    }

    /// How much an Accept header wants `mediaType` (0 to 1): the quality of its own entry, else of its
    /// `type/*` entry, else of `*/*`, else 0. An absent header accepts everything equally.
    static func quality<Accept: AcceptableProtocol>(of mediaType: String, in accept: [AcceptHeaderContentType<Accept>]) -> Double {
        let type = mediaType.split(separator: "/").first.map { "\($0)/*" } ?? mediaType
        for candidate in [mediaType, type, "*/*"] {
            let matching = accept.filter { $0.contentType.rawValue.lowercased() == candidate }
            if let best = matching.map(\.quality.doubleValue).max() { return best }
        }
        return 0
    }
}
