import ArgumentParser
import Foundation
import KlevrAPI
import KlevrClient
import OpenAPIRuntime

/// `klevr events [-f]`: the typed event log.
struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "List the event log (every change of runs, tasks, agents, zones, keys, users), or follow it.")

    @Option(help: "Event kinds or families, comma-separated (run, run.started, agent.*, primary …).") var kind: String?
    @Option(help: "A zone's name or id.") var zone: String?
    @Option(help: "The id of what changed (a run, an agent, a user …).") var subject: String?
    @Option(help: "Who made the change: a user name, or a user, token or agent id.") var actor: String?
    @Option(help: "How many events (newest first) to list.") var limit = 50
    @Flag(name: .shortAndLong, help: "Follow new events as they happen (Ctrl-C to stop).") var follow = false
    @OptionGroup var options: ClientOptions

    func run() async throws {
        let query = EventQuery(kind: kind, zone: zone, subject: subject, actor: actor, limit: limit)
        try await Self.show(.events, query: query, follow: follow, options: options)
    }

    /// Lists (oldest of the newest `limit` first) and optionally follows the events of `log`.
    static func show(_ log: EventLog, query: EventQuery, follow: Bool, options: ClientOptions) async throws {
        guard (1...500).contains(query.limit) else { throw ValidationError("--limit must be 1 to 500") }
        try await options.withClient { client in
            let page = try await api { try await log.page(client, query) }
            let listed = Array(page.items.reversed())
            if options.output == .json && !follow { return try Printer.json(listed) }
            if options.output == .table { printTable(listed) }
            guard follow else { return }
            let after = listed.last.map { String($0.id) }
            try await api {
                try await EventStreamFollower().follow(from: after) { lastID in
                    try await log.stream(client, query, after: lastID.flatMap { Int64($0) } ?? 0)
                } handle: { event in
                    guard let data = event.data, let parsed = try? JSONDecoder().decode(Components.Schemas.Event.self, from: Data(data.utf8))
                    else { return true }
                    // Written at once (not buffered), so that a follow piped into another program is live.
                    if options.output == .json { say(data) } else { say(row(parsed).joined(separator: "  ")) }
                    return true
                }
            }
        }
    }

    static func printTable(_ events: [Components.Schemas.Event]) {
        Printer.table(["ID", "TIME", "KIND", "ACTOR", "ZONE", "SUBJECT", "DETAIL"], events.map(row))
    }

    static func row(_ event: Components.Schemas.Event) -> [String] {
        [String(event.id), Printer.time(event.at), event.kind.rawValue,
         "\(event.actor.kind.rawValue):\(event.actor.name)" + (event.actor.address.map { "@\($0)" } ?? ""), event.zone ?? event.zoneId ?? "-",
         event.subject, summary(event.detail.additionalProperties)]
    }

    /// `key=value` pairs in key order, on one line (values with control characters escaped).
    static func summary(_ detail: [String: String]) -> String {
        detail.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.unicodeScalars.map { $0.properties.generalCategory == .control ? "\\u{\(String($0.value, radix: 16))}" : String($0) }.joined())" }
            .joined(separator: " ")
    }
}

/// `klevr audit [-f]`: what users did (themselves or through their tokens), with the client address.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "The audit log: every change made by users and their API tokens, with the client address (admins).")

    @Option(help: "Event kinds or families, comma-separated (user, token, zone, run.canceled …).") var kind: String?
    @Option(help: "A zone's name or id.") var zone: String?
    @Option(help: "The id of what changed.") var subject: String?
    @Option(help: "A user name, or a user or token id.") var actor: String?
    @Option(help: "How many entries (newest first) to list.") var limit = 50
    @Flag(name: .shortAndLong, help: "Follow new entries as they happen (Ctrl-C to stop).") var follow = false
    @OptionGroup var options: ClientOptions

    func run() async throws {
        let query = EventQuery(kind: kind, zone: zone, subject: subject, actor: actor, limit: limit)
        try await EventsCommand.show(.audit, query: query, follow: follow, options: options)
    }
}

/// The filters `klevr events` and `klevr audit` share.
struct EventQuery {
    var kind: String?
    var zone: String?
    var subject: String?
    var actor: String?
    var limit: Int
}

/// The two operations that list and stream events: the whole log, and the audit log (users' changes).
enum EventLog {
    case events
    case audit

    /// The newest events matching `query`.
    ///
    /// The request accepts JSON only: the generated client's default `Accept` names every content type
    /// the document lists, `text/event-stream` included, and the manager streams for that.
    func page(_ client: Client, _ query: EventQuery) async throws -> Components.Schemas.EventPage {
        switch self {
        case .events:
            try await client.listEvents(
                query: .init(kind: query.kind, zone: query.zone, subject: query.subject, actor: query.actor, limit: query.limit),
                headers: .init(accept: [.init(contentType: .json)])
            ).ok.body.json
        case .audit:
            try await client.auditLog(
                query: .init(kind: query.kind, zone: query.zone, subject: query.subject, actor: query.actor, limit: query.limit),
                headers: .init(accept: [.init(contentType: .json)])
            ).ok.body.json
        }
    }

    /// The live stream of events after the id `after` that match `query` (Server-Sent Events).
    func stream(_ client: Client, _ query: EventQuery, after: Int64) async throws -> HTTPBody {
        switch self {
        case .events:
            try await client.listEvents(
                query: .init(
                    kind: query.kind, zone: query.zone, subject: query.subject, actor: query.actor, after: after, follow: true, limit: query.limit),
                headers: .init(accept: [.init(contentType: .textEventStream)])
            ).ok.body.textEventStream
        case .audit:
            try await client.auditLog(
                query: .init(
                    kind: query.kind, zone: query.zone, subject: query.subject, actor: query.actor, after: after, follow: true, limit: query.limit),
                headers: .init(accept: [.init(contentType: .textEventStream)])
            ).ok.body.textEventStream
        }
    }
}
