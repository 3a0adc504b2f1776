import Foundation
import Hummingbird
import KlevrAPI
import KlevrCore
import KlevrStore
import NIOCore

extension Manager {
    /// `GET /api/v1/events`: the typed event log, newest first with a cursor, or followed live as
    /// Server-Sent Events (`?follow=true` or `Accept: text/event-stream`), resumable with `Last-Event-ID`
    /// or `?after=ID`.
    func addEventRoutes(to router: Router<KlevrRequestContext>) {
        router.get("/api/v1/events") { request, context in
            let user = try context.requireUser()
            let filter = try Self.eventFilter(request)
            return try await events(request, context: context, filter: filter, isAdmin: user.role >= .admin)
        }
        // The audit log: what users did, themselves or through their tokens, with the client address.
        router.get("/api/v1/audit") { request, context in
            _ = try context.requireUser()
            var filter = try Self.eventFilter(request)
            filter.actorKinds = [.user, .token]
            return try await events(request, context: context, filter: filter, isAdmin: true)
        }
    }

    /// Lists or follows events matching `filter`.
    func events(_ request: Request, context: KlevrRequestContext, filter: EventFilter, isAdmin: Bool) async throws -> Response {
        let limit = try Self.pageLimit(request)
        let follow = try Self.flag(request, "follow") || request.headers[.accept]?.contains("text/event-stream") == true
        var after: Int64?
        if let text = request.uri.queryParameters["after"]
            ?? request.headers.first(where: { $0.name.canonicalName == "last-event-id" }).map({ Substring($0.value) }) {
            guard let value = Int64(text), value >= 0 else { throw Problem.invalid("after", "must be an event id (an integer >= 0)") }
            after = value
        }
        if !follow {
            if let after {
                let events = try await store.events(filter, after: after, limit: limit)
                let next = events.count == limit ? events.last.map { String($0.id) } : nil
                return try JSONBody.response(Page(items: events.map { Self.view($0, admin: isAdmin) }, nextCursor: next))
            }
            let events = try await store.events(filter, before: try Self.eventCursor(request), limit: limit)
            return try JSONBody.response(
                Page(items: events.map { Self.view($0, admin: isAdmin) }, nextCursor: Self.nextCursor(events, limit: limit)))
        }
        // Without a position the stream starts now (with `since`, at that time).
        var start: Int64 = 0
        if let after {
            start = after
        } else if filter.since == nil {
            start = try await store.lastEventID()
        }
        let first = start
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: ResponseBody { writer in
                try await streamEvents(filter, after: first, admin: isAdmin, to: &writer)
                try await writer.finish(nil)
            })
    }

    /// Writes events after `after` as Server-Sent Events (`id:` is the event id, `event:` its kind), then
    /// follows new ones until the client goes away; a comment line every 15 s keeps proxies from closing.
    func streamEvents(_ filter: EventFilter, after: Int64, admin: Bool, to writer: inout any ResponseBodyWriter) async throws {
        var last = after
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try await writer.write(ByteBuffer(string: ": following events after \(after)\n\n"))
        while !Task.isCancelled {
            let version = await hub.version(Store.eventsKey)
            let events = try await store.events(filter, after: last, limit: 500)
            for event in events {
                let data = String(decoding: try encoder.encode(Self.view(event, admin: admin)), as: UTF8.self)
                try await writer.write(ByteBuffer(string: "id: \(event.id)\nevent: \(event.kind.rawValue)\ndata: \(data)\n\n"))
                last = event.id
            }
            if events.count == 500 { continue }
            if await !hub.wait(Store.eventsKey, since: version, seconds: 15) {
                try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
            }
        }
    }

    static func eventFilter(_ request: Request) throws -> EventFilter {
        let query = request.uri.queryParameters
        var filter = EventFilter()
        if let kinds = query["kind"] {
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
        if let zone = query["zone"] {
            guard Validation.isValidName(String(zone)) || Validation.isValidID(String(zone)) else {
                throw Problem.invalid("zone", "is not a zone name or id")
            }
            filter.zone = String(zone)
        }
        if let subject = query["subject"] {
            guard Validation.isValidID(String(subject)) else { throw Problem.invalid("subject", "is not an id") }
            filter.subject = String(subject)
        }
        if let actor = query["actor"] {
            guard Validation.isValidID(String(actor)) || Validation.isValidName(String(actor)) else {
                throw Problem.invalid("actor", "is not a user name or an id")
            }
            filter.actor = String(actor)
        }
        if let since = query["since"] {
            guard let value = Int64(since), value >= 0 else { throw Problem.invalid("since", "must be a time in epoch milliseconds") }
            filter.since = value
        }
        return filter
    }

    static func eventCursor(_ request: Request) throws -> Int64? {
        guard let text = request.uri.queryParameters["cursor"] else { return nil }
        guard let id = Int64(text), id > 0, String(id) == text, text.count <= 18 else { throw Problem.invalid("cursor", "is not a cursor returned by this API") }
        return id
    }

    static func nextCursor(_ events: [EventRecord], limit: Int) -> String? {
        events.count == limit ? events.last.map { String($0.id) } : nil
    }

    static func view(_ event: EventRecord, for context: KlevrRequestContext) -> EventView {
        var admin = false
        if case .user(let user, _) = context.principal { admin = user.role >= .admin }
        return view(event, admin: admin)
    }

    /// An event as the API shows it; client addresses only to admins.
    static func view(_ event: EventRecord, admin: Bool) -> EventView {
        EventView(
            id: event.id, kind: event.kind.rawValue, at: event.at,
            actor: ActorView(
                kind: event.actor.kind.rawValue, id: event.actor.id, name: event.actor.name, address: admin ? event.actor.address : nil),
            zoneId: event.zoneID.isEmpty ? nil : event.zoneID, zone: event.zoneName, subject: event.subject, detail: event.detail)
    }
}
