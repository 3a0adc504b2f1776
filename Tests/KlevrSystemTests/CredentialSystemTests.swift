import Crypto
import Foundation
import KlevrAPI
import KlevrClient
import KlevrCore
import KlevrTestSupport
import NIOCore
import NIOHTTP1
import OpenAPIRuntime
import Testing

/// Credentials with a real manager and real agents, one of them behind the zone's relay: the script gets
/// the value, and the value appears nowhere else.
@Suite(.serialized, .timeLimit(.minutes(6)), .waitsForProcesses)
struct CredentialSystemTests {
    /// Every file under `directory` (database and its WAL, logs, agents' state dirs and outboxes) that holds `needle`.
    static func files(under directory: String, containing needle: String) -> [String] {
        let bytes = Data(needle.utf8)
        var found: [String] = []
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return ["cannot walk \(directory)"] }
        while let relative = walker.nextObject() as? String {
            let path = directory + "/" + relative
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
                let data = FileManager.default.contents(atPath: path)
            else { continue }
            if data.range(of: bytes) != nil { found.append(relative) }
        }
        return found
    }

    @Test func aCredentialReachesTheScriptAndAppearsNowhereElse() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "z")
        // The member has no manager route: its runs come through the primary's relay.
        try await cluster.startAgent("a", zone: "z")
        let member = try await cluster.startAgent("b", zone: "z", viaPeers: ["a"])
        try await eventually(60, "the member is online through the relay") { (try? await cluster.agent(member).status) == .online }

        let value = "pw-" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
        let digest = SHA256.hash(data: Data(value.utf8)).map { String(format: "%02x", $0) }.joined()
        // Stored through the CLI, reading the value from standard input (never an argument).
        let input = cluster.directory + "/value.txt"
        try Data((value + "\n").utf8).write(to: URL(fileURLWithPath: input))
        let created = try await cluster.runCLI(["credential", "create", "DB_PASSWORD", "--zone", "z", "--from-file", input, "--output", "json"])
        try FileManager.default.removeItem(atPath: input)
        #expect(created.status == 0, "\(created.output)")
        #expect(!created.output.contains(value))

        // The value is printed in several ways: whole on stdout and stderr, in the environment, in two
        // halves a second apart (two chunks), across the coalescer's 64 KiB chunk boundary, and in the result.
        let script = """
            echo "plain: $KLEVR_CRED_DB_PASSWORD"
            echo "stderr: $KLEVR_CRED_DB_PASSWORD" >&2
            env | grep KLEVR_CRED_
            printf 'halves: %s' "$(printf '%s' "$KLEVR_CRED_DB_PASSWORD" | cut -c1-12)"; sleep 1
            printf '%s\\n' "$(printf '%s' "$KLEVR_CRED_DB_PASSWORD" | cut -c13-)"
            head -c 65520 /dev/zero | tr '\\0' 'x'; echo "$KLEVR_CRED_DB_PASSWORD"
            printf 'digest: %s\\n' "$(printf '%s' "$KLEVR_CRED_DB_PASSWORD" | sha256sum | cut -d' ' -f1)"
            printf '{"password": "%s"}' "$KLEVR_CRED_DB_PASSWORD" > "$KLEVR_RESULT_FILE"
            """
        let run = try await cluster.runCLI([
            "task", "run", "--zone", "z", "--agent", member, "--credential", "DB_PASSWORD", "--output", "json", "--", script,
        ])
        #expect(run.status == 0, "\(run.output.suffix(2000))")
        let task = try #require(try await cluster.api.listTasks(query: .init(zone: "z")).ok.body.json.items.first)
        #expect(task.credentials == ["DB_PASSWORD"])
        let runID = try #require(try await cluster.api.getTask(path: .init(id: task.id)).ok.body.json.runs.first?.id)
        try await eventually(30, "the run succeeded") { (try? await cluster.run(runID).status) == .succeeded }

        // The script had the real value (its digest matches), and its log shows it masked.
        let output = try await cluster.output(runID)
        // Standard output alone: stderr's chunks may come between two of its chunks in the joined log.
        let stdout = try await cluster.api.runLogs(path: .init(id: runID), headers: .init(accept: [.init(contentType: .json)])).ok.body.json.items
            .filter { $0.stream == .stdout }.map(\.data).joined()
        #expect(output.contains("digest: \(digest)"), "\(output.suffix(500))")
        #expect(output.contains("plain: ********"))
        #expect(output.contains("stderr: ********"))
        #expect(output.contains("KLEVR_CRED_DB_PASSWORD=********"))
        #expect(stdout.contains("halves: ********"))
        #expect(stdout.contains("x********"))
        #expect(!output.contains(value))
        #expect(try await cluster.run(runID).result?.contains("********") == true)

        // No API answer holds it: the stored and streamed log, the run, the task, the credential, events, audit.
        let base = cluster.url + "/api/v1"
        let auth = [("Authorization", "Bearer \(cluster.token)")]
        let credentialID = try #require(try await cluster.api.listCredentials(query: .init()).ok.body.json.items.first?.id)
        for path in [
            "/runs/\(runID)", "/runs/\(runID)/logs", "/tasks/\(task.id)", "/tasks", "/runs", "/credentials", "/credentials/\(credentialID)",
            "/events?limit=500", "/audit?limit=500", "/agents",
        ] {
            let answer = try await RawHTTP.send(.GET, base + path, headers: auth + [("Accept", "application/json")])
            #expect(answer.isSuccess, "\(path): \(answer.status)")
            #expect(!String(decoding: answer.body, as: UTF8.self).contains(value), "\(path) shows the credential's value")
        }
        let streamed = try await RawHTTP.send(.GET, base + "/runs/\(runID)/logs", headers: auth + [("Accept", "text/event-stream")], timeout: .seconds(30))
        #expect(streamed.isSuccess)
        #expect(String(decoding: streamed.body, as: UTF8.self).contains("********"))
        #expect(!String(decoding: streamed.body, as: UTF8.self).contains(value), "the streamed log shows the credential's value")
        let followed = try await cluster.runCLI(["run", "logs", "-f", runID])
        #expect(followed.output.contains("plain: ********"), "\(followed.output.prefix(500))")
        #expect(!followed.output.contains(value))

        // Nor any file: the manager's database (encrypted at rest) and its WAL, the manager's and agents'
        // logs (debug level), the primary's and the member's state dirs and outboxes.
        #expect(Self.files(under: cluster.directory, containing: value).isEmpty, "files holding the value: \(Self.files(under: cluster.directory, containing: value))")

        // A task may not name a credential that does not exist in its zone or globally.
        let unknown = try await RawHTTP.sendJSON(
            .POST, base + "/tasks",
            ["zone": AnyEncodable("z"), "target": AnyEncodable(["kind": "any"]), "steps": AnyEncodable([["script": "true"]]), "credentials": AnyEncodable(["NOPE"])],
            bearer: cluster.token)
        #expect(unknown.status == 404)
        #expect(unknown.problem?.detail.contains("credentials[0]") == true)
    }
}

/// An `Encodable` of any encodable value, for hand-built JSON bodies.
struct AnyEncodable: Encodable {
    let encodeValue: (any Encoder) throws -> Void
    init(_ value: some Encodable) { encodeValue = value.encode(to:) }
    func encode(to encoder: any Encoder) throws { try encodeValue(encoder) }
}
