import ArgumentParser
import AsyncHTTPClient
import Foundation
import KlevrAPI
import KlevrAgent
import NIOCore
import NIOHTTP1

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
        try await Self.show(
            "/api/v1/events", kind: kind, zone: zone, subject: subject, actor: actor, limit: limit, follow: follow, options: options)
    }

    /// Lists (oldest of the newest `limit` first) and optionally follows the events of `path`.
    static func show(
        _ path: String, kind: String?, zone: String?, subject: String?, actor: String?, limit: Int, follow: Bool, options: ClientOptions
    ) async throws {
        guard (1...500).contains(limit) else { throw ValidationError("--limit must be 1 to 500") }
        let client = try options.client()
        var query = ["limit=\(limit)"]
        if let kind { query.append("kind=\(kind.urlQueryEscaped)") }
        if let zone { query.append("zone=\(zone.urlQueryEscaped)") }
        if let subject { query.append("subject=\(subject.urlQueryEscaped)") }
        if let actor { query.append("actor=\(actor.urlQueryEscaped)") }
        let page = try await api { try await client.send(.GET, path + "?" + query.joined(separator: "&"), as: Page<EventView>.self) }
        let listed = Array(page.items.reversed())
        if options.output == .json && !follow { return try Printer.json(listed) }
        if options.output == .table { printTable(listed) }
        guard follow else { return }
        let after = listed.last?.id ?? 0
        try await api {
            try await followStream(client, path: path + "?" + (query + ["after=\(after)", "follow=true"]).joined(separator: "&")) { _, data in
                guard let event = try? JSONDecoder().decode(EventView.self, from: Data(data.utf8)) else { return true }
                if options.output == .json { print(data) } else { printRow(event) }
                return true
            }
        }
    }

    static func printTable(_ events: [EventView]) {
        Printer.table(["ID", "TIME", "KIND", "ACTOR", "ZONE", "SUBJECT", "DETAIL"], events.map(row))
    }

    static func printRow(_ event: EventView) {
        print(row(event).joined(separator: "  "))
    }

    static func row(_ event: EventView) -> [String] {
        [String(event.id), Printer.time(event.at), event.kind,
         "\(event.actor.kind):\(event.actor.name)" + (event.actor.address.map { "@\($0)" } ?? ""), event.zone ?? event.zoneId ?? "-",
         event.subject, summary(event.detail)]
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
        try await EventsCommand.show(
            "/api/v1/audit", kind: kind, zone: zone, subject: subject, actor: actor, limit: limit, follow: follow, options: options)
    }
}

/// Reads a Server-Sent Events stream; `handle` gets each event's name and data and returns false to stop.
func followStream(_ client: JSONClient, path: String, handle: (String, String) throws -> Bool) async throws {
    var request = HTTPClientRequest(url: client.baseURL + path)
    request.tlsConfiguration = client.tls
    request.headers.add(name: "Authorization", value: "Bearer \(client.bearer ?? "")")
    request.headers.add(name: "Accept", value: "text/event-stream")
    let response = try await client.http.execute(request, timeout: .hours(24 * 365))
    guard response.status == .ok else {
        var body = try await response.body.collect(upTo: 1 << 20)
        throw CLIError("the manager refused: HTTP \(response.status.code) \(body.readString(length: body.readableBytes) ?? "")")
    }
    var pending = ""
    for try await var buffer in response.body {
        pending += buffer.readString(length: buffer.readableBytes) ?? ""
        while let range = pending.range(of: "\n\n") {
            let block = String(pending[..<range.lowerBound])
            pending = String(pending[range.upperBound...])
            var name = "message"
            var data = ""
            for line in block.split(separator: "\n") {
                if line.hasPrefix("event: ") { name = String(line.dropFirst(7)) }
                if line.hasPrefix("data: ") { data = String(line.dropFirst(6)) }
            }
            if data.isEmpty { continue }
            if try !handle(name, data) { return }
        }
        // A stream that sends no blank line is not SSE: do not buffer it without bound.
        if pending.utf8.count > 8 << 20 { throw CLIError("the event stream sent more than 8 MiB without an event boundary") }
    }
}
