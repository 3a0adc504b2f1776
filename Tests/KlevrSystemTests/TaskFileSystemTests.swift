import Foundation
import KlevrAPI
import KlevrClient
import KlevrCore
import KlevrTestSupport
import Testing

/// `klevr task create -f`: the full task model from a YAML file, against a real manager and agent.
@Suite(.serialized, .timeLimit(.minutes(5)), .waitsForProcesses)
struct TaskFileSystemTests {
    @Test func aYAMLTaskFileCreatesTheTaskItDescribesAndAMisspeltFieldIsRefused() async throws {
        let cluster = try Cluster()
        defer { cluster.shutdown() }
        try await cluster.startManager()
        try await cluster.bootstrap(zone: "z")
        let agent = try await cluster.startAgent("a", zone: "z")
        let value = "file-secret-\(UUID().uuidString.prefix(8))"
        let input = cluster.directory + "/value.txt"
        try Data(value.utf8).write(to: URL(fileURLWithPath: input))
        #expect(try await cluster.runCLI(["credential", "create", "API_KEY", "--global", "--from-file", input]).status == 0)

        let file = cluster.directory + "/task.yaml"
        try """
            # A two-step task with a parameter, a credential and a deadline.
            name: from a file
            zone: z
            target: { kind: agent, agentId: \(agent) }
            params:
              WHO: world
            credentials: [API_KEY]
            deliverWithinSeconds: 600
            timeoutSeconds: 120
            steps:
              - name: greet
                script: |
                  echo "hello $KLEVR_PARAM_WHO"
                  printf '%s' "step one" > "$KLEVR_RESULT_FILE"
              - name: use the key
                script: echo "previous=$(cat "$KLEVR_PREVIOUS_RESULT_FILE") key=$KLEVR_CRED_API_KEY"
                timeoutSeconds: 60
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let created = try await cluster.runCLI(["task", "create", "-f", file, "--wait"])
        #expect(created.status == 0, "\(created.output)")
        #expect(created.output.contains("hello world"), "\(created.output)")
        #expect(created.output.contains("previous=step one key=********"), "\(created.output)")
        let task = try #require(try await cluster.api.listTasks(query: .init(zone: "z")).ok.body.json.items.first)
        #expect(task.name == "from a file")
        #expect(task.steps.map(\.name) == ["greet", "use the key"])
        #expect(task.credentials == ["API_KEY"])
        #expect(task.deliverWithinSeconds == 600)
        #expect(task.timeoutSeconds == 120)

        // A recurring task from a file prints its next fire times.
        try """
            zone: z
            target: { kind: all }
            steps: [{ script: "true" }]
            schedule: { cron: "0 3 * * mon-fri", timeZone: Europe/Berlin, overlap: skip }
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let recurring = try await cluster.runCLI(["task", "create", "-f", file])
        #expect(recurring.status == 0, "\(recurring.output)")
        #expect(recurring.output.contains("next"), "\(recurring.output)")

        // A misspelt field, a file that is not YAML and a bad value are refused; nothing is created.
        let before = try await cluster.api.listTasks(query: .init(zone: "z")).ok.body.json.items.count
        try "zone: z\ntarget: { kind: all }\nsteps: [{ script: 'true' }]\ntimeout_seconds: 5\n".write(toFile: file, atomically: true, encoding: .utf8)
        let misspelt = try await cluster.runCLI(["task", "create", "-f", file])
        #expect(misspelt.status != 0)
        #expect(misspelt.output.contains("timeout_seconds"), "\(misspelt.output)")
        try "zone: z\nsteps: [unclosed\n".write(toFile: file, atomically: true, encoding: .utf8)
        let broken = try await cluster.runCLI(["task", "create", "-f", file])
        #expect(broken.status != 0)
        #expect(broken.output.contains("not valid YAML"), "\(broken.output)")
        try "zone: z\ntarget: { kind: all }\nsteps: [{ script: 'true' }]\ntimeoutSeconds: 0\n".write(toFile: file, atomically: true, encoding: .utf8)
        let invalid = try await cluster.runCLI(["task", "create", "-f", file])
        #expect(invalid.status != 0)
        #expect(invalid.output.contains("timeoutSeconds"), "\(invalid.output)")
        #expect(try await cluster.api.listTasks(query: .init(zone: "z")).ok.body.json.items.count == before)

        // `task run --callback-url`: the signing secret is printed once, the task carries the URL.
        let withCallback = try await cluster.runCLI(
            ["task", "run", "--zone", "z", "--agent", agent, "--callback-url", "http://127.0.0.1:9/callback", "--", "echo called-back"])
        #expect(withCallback.status == 0, "\(withCallback.output)")
        #expect(withCallback.output.contains("callback http://127.0.0.1:9/callback signing secret (shown once): whsec_"), "\(withCallback.output)")
        #expect(withCallback.output.contains("called-back"), "\(withCallback.output)")
        let callbackTask = try #require(
            try await cluster.api.listTasks(query: .init(zone: "z")).ok.body.json.items.first { $0.steps.first?.script == "echo called-back" })
        let shown = try await cluster.api.getTask(path: .init(id: callbackTask.id)).ok.body.json
        #expect(shown.callbackUrl == "http://127.0.0.1:9/callback")
        #expect(shown.callbackSecret == nil, "the secret is shown once, at creation")
        let refusedCallback = try await cluster.runCLI(["task", "run", "--zone", "z", "--agent", agent, "--callback-url", "ftp://x/", "--", "true"])
        #expect(refusedCallback.status != 0)
        #expect(refusedCallback.output.contains("callbackUrl"), "\(refusedCallback.output)")
    }
}
