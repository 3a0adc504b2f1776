import HTTPTypes
import KlevrAPI
import KlevrCore
import KlevrStore
import OpenAPIRuntime

/// The event log and the audit log: listed newest first with a cursor, listed after an id, or followed
/// live as Server-Sent Events (see ``EventStream``).
extension ManagerAPI {
    func listEvents(_ input: Operations.ListEvents.Input) async throws -> Operations.ListEvents.Output {
        let admin = try context.requireUser().role >= .admin
        let query = EventQuery(input.query, lastEventID: input.headers.lastEventID, accept: input.headers.accept)
        switch try await events(query, filter: try Self.eventFilter(query), admin: admin) {
        case .page(let page): return .ok(.init(body: .json(page)))
        case .stream(let body): return .ok(.init(headers: .init(cacheControl: "no-cache"), body: .textEventStream(body)))
        }
    }

    /// The audit log: what users did, themselves or through their tokens, with the client address.
    func auditLog(_ input: Operations.AuditLog.Input) async throws -> Operations.AuditLog.Output {
        _ = try context.requireUser()
        let query = EventQuery(input.query, lastEventID: input.headers.lastEventID, accept: input.headers.accept)
        var filter = try Self.eventFilter(query)
        filter.actorKinds = [.user, .token]
        switch try await events(query, filter: filter, admin: true) {
        case .page(let page): return .ok(.init(body: .json(page)))
        case .stream(let body): return .ok(.init(headers: .init(cacheControl: "no-cache"), body: .textEventStream(body)))
        }
    }

    /// A page of events or the live stream, whichever the query asks for.
    enum EventsAnswer {
        case page(Components.Schemas.EventPage)
        case stream(HTTPBody)
    }

    /// Lists or follows the events matching `filter`.
    func events(_ query: EventQuery, filter: EventFilter, admin: Bool) async throws -> EventsAnswer {
        let limit = try Self.pageLimit(query.limit)
        let after = try query.position()
        guard query.follow ?? false || query.prefersStream else {
            if let after {
                let events = try await store.events(filter, after: after, limit: limit)
                let items = try events.map { try Self.view($0, admin: admin) }
                return .page(.init(items: items, nextCursor: Self.nextCursor(events, limit: limit)))
            }
            let events = try await store.events(filter, before: try Self.eventCursor(query.cursor), limit: limit)
            return .page(.init(items: try events.map { try Self.view($0, admin: admin) }, nextCursor: Self.nextCursor(events, limit: limit)))
        }
        guard query.acceptsStream else {
            throw Problem(.notAcceptable, type: "not-acceptable", detail: "the live stream is text/event-stream, which the Accept header refuses")
        }
        // Without a position the stream starts now (with `since`, at that time).
        var start: Int64 = 0
        if let after {
            start = after
        } else if filter.since == nil {
            start = try await store.lastEventID()
        }
        let stream = EventStream(store: store, hub: manager.hub, filter: filter, after: start, admin: admin)
        return .stream(HTTPBody(stream, length: .unknown, iterationBehavior: .single))
    }

    static func eventFilter(_ query: EventQuery) throws -> EventFilter {
        var filter = EventFilter()
        if let kinds = query.kind {
            for name in kinds.split(separator: ",") {
                // `run` or `run.*` selects every kind of that family.
                let family = name.hasSuffix(".*") ? String(name.dropLast(2)) : String(name)
                let matching = EventKind.allCases.filter { $0.rawValue == family || $0.rawValue.hasPrefix(family + ".") }
                guard !matching.isEmpty else {
                    throw Problem.invalid("kind", "'\(name)' is not an event kind or family (such as run, run.started, agent.*)")
                }
                filter.kinds += matching
            }
        }
        if let zone = query.zone {
            guard Validation.isValidName(zone) || Validation.isValidID(zone) else { throw Problem.invalid("zone", "is not a zone name or id") }
            filter.zone = zone
        }
        if let subject = query.subject {
            guard Validation.isValidID(subject) else { throw Problem.invalid("subject", "is not an id") }
            filter.subject = subject
        }
        if let actor = query.actor {
            guard Validation.isValidID(actor) || Validation.isValidName(actor) else {
                throw Problem.invalid("actor", "is not a user name or an id")
            }
            filter.actor = actor
        }
        if let since = query.since {
            guard since >= 0 else { throw Problem.invalid("since", "must be a time in epoch milliseconds") }
            filter.since = since
        }
        return filter
    }
}
