import AsyncHTTPClient
import Foundation
import KlevrAPI
import KlevrAgent
import KlevrClient
import KlevrCore
import NIOCore
import NIOHTTP1
import KlevrTestSupport
import Testing

/// The event log end to end: a real manager and agent, the SSE stream, resuming from the last id, the
/// CLI, and retiring an agent that is running a script.
@Suite(.serialized, .timeLimit(.minutes(5)), .waitsForProcesses)
struct EventSystemTests {
    /// Reads the event stream from `path` until `stop` says so or `seconds` pass; returns what it read.
    ///
    /// Raw HTTP on purpose, not the generated client: this checks the wire format itself (the exact
    /// `Content-Type`, the `id:` and `event:` lines, the stream chosen by `Accept` or `follow=true`).
    static func read(
        _ cluster: Cluster, _ path: String, lastEventID: Int64? = nil, seconds: Int64 = 60,
        stop: @escaping @Sendable ([Components.Schemas.Event]) -> Bool
    ) async throws -> [Components.Schemas.Event] {
        var request = HTTPClientRequest(url: cluster.url + path)
        request.headers.add(name: "Authorization", value: "Bearer \(cluster.token)")
        request.headers.add(name: "Accept", value: "text/event-stream")
        if let lastEventID { request.headers.add(name: "Last-Event-ID", value: String(lastEventID)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(seconds))
        #expect(response.status == .ok)
        #expect(response.headers.first(name: "content-type") == "text/event-stream")
        var events: [Components.Schemas.Event] = []
        var pending = ""
        for try await var buffer in response.body {
            pending += buffer.readString(length: buffer.readableBytes) ?? ""
            while let range = pending.range(of: "\n\n") {
                let block = pending[..<range.lowerBound]
                pending = String(pending[range.upperBound...])
                var id: Int64?
                var name = ""
                var data = ""
                for line in block.split(separator: "\n") {
                    if line.hasPrefix("id: ") { id = Int64(line.dropFirst(4)) }
                    if line.hasPrefix("event: ") { name = String(line.dropFirst(7)) }
                    if line.hasPrefix("data: ") { data = String(line.dropFirst(6)) }
                }
                guard !data.isEmpty else { continue }
                let event = try JSONDecoder().decode(Components.Schemas.Event.self, from: Data(data.utf8))
                #expect(event.id == id && event.kind.rawValue == name, "the SSE id and event lines name the event")
                events.append(event)
                if stop(events) { return events }
            }
        }
        Issue.record("the event stream ended before the expected events: \(events.map(\.kind.rawValue))")
        return events
    }

    @Test func theStreamFollowsARunAndResumesFromTheLastEventID() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "z")
        let agent = try await cluster.startAgent("a", zone: "z")
        let latest = try await cluster.events(limit: 1).first?.id ?? 0

        let task = try await cluster.createTask(
            .init(zone: "z", target: .agent(agent), steps: [.init(script: "echo from-the-run")]))
        let runID = try #require(task.runs.first?.id)
        let seen = try await Self.read(cluster, "/api/v1/events?follow=true&kind=run&after=\(latest)") { events in
            events.contains { $0.subject == runID && $0.kind == .run_succeeded }
        }
        let ofRun = seen.filter { $0.subject == runID && $0.kind != .run_redelivered }
        #expect(ofRun.map(\.kind.rawValue) == ["run.created", "run.dispatched", "run.started", "run.succeeded"])
        #expect(seen.map(\.id) == seen.map(\.id).sorted(), "ids increase along the stream")
        #expect(ofRun.first?.actor.kind == .token && ofRun.first?.actor.name == "admin")
        #expect(ofRun.last?.actor.kind == .agent && ofRun.last?.actor.id == agent)
        #expect(ofRun.last?.detail.additionalProperties["exitCode"] == "0")

        // A client that reconnects with the id it saw last gets what came after, with no gap.
        let dispatched = try #require(ofRun.first { $0.kind == .run_dispatched })
        let resumed = try await Self.read(cluster, "/api/v1/events?kind=run", lastEventID: dispatched.id) { events in
            events.contains { $0.subject == runID }
        }
        #expect(resumed.first { $0.subject == runID && $0.kind != .run_redelivered }?.kind == .run_started)
        #expect(resumed.allSatisfy { $0.id > dispatched.id })

        // The list: newest first, filtered; and the CLI prints the same events.
        let listed = try await cluster.events(subject: runID)
        #expect(listed.map(\.id) == ofRun.map(\.id).reversed() || listed.count > ofRun.count)
        let cli = try await cluster.runCLI(["events", "--subject", runID, "--output", "json"])
        #expect(cli.status == 0, "\(cli.output)")
        let printed = try JSONDecoder().decode([Components.Schemas.Event].self, from: Data(cli.output.utf8))
        #expect(printed.map(\.id) == listed.map(\.id).reversed())

        // A bad filter is a 422 that names the field.
        do {
            _ = try await cluster.events(kind: "nonsense")
            Issue.record("an unknown kind must be refused")
        } catch {
            let refusal = try #require(ManagerClient.cause(of: error) as? ManagerRefusal, "\(error)")
            #expect(refusal.status == 422)
            #expect(refusal.problem?.errors?.first?.field == "kind")
        }
    }

    @Test func retiringAnAgentStopsItsScriptBeforeItsCredentialDies() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "z")
        let agent = try await cluster.startAgent("a", zone: "z")
        let marker = "67.\(Int.random(in: 100_000...999_999))"
        let task = try await cluster.createTask(
            .init(
                zone: "z", target: .agent(agent), steps: [.init(script: "sleep \(marker) & sleep \(marker); wait")]))
        let runID = try #require(task.runs.first?.id)
        try await eventually(30, "the run is running") { try await cluster.run(runID).status == .running && SystemTests.processExists(marker) }

        let retiring = try await cluster.api.retireAgent(path: .init(id: agent)).ok.body.json
        #expect(retiring.status == .retiring, "an agent with a running script is retiring, not retired: \(retiring.status)")
        var retiredSeenWithProcess = false
        try await eventually(60, "the agent is retired") {
            let events = try await cluster.events(subject: agent)
            guard events.contains(where: { $0.kind == .agent_retired }) else { return false }
            retiredSeenWithProcess = SystemTests.processExists(marker)
            return true
        }
        #expect(!retiredSeenWithProcess, "the script was still running when the agent's credential died")
        let run = try await cluster.run(runID)
        #expect(run.status == .canceled)
        #expect(run.reason?.contains("did not confirm") != true, "the agent itself reported the stop: \(run.reason ?? "")")
        let agentNow = try await cluster.agent(agent)
        #expect(agentNow.status == .retired)
        let order = try await cluster.events(subject: runID).reversed().map(\.kind.rawValue)
        #expect(Array(order.suffix(2)) == ["run.cancel_requested", "run.canceled"])
    }
}
