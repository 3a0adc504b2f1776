import Foundation
import KlevrCore
import Testing

/// The registry of built-in commands and the checking of a step's `args` against a command's parameters.
@Suite struct BuiltinCommandRegistryTests {
    @Test func everyCommandOfTheSpecIsRegisteredOnceWithSchemas() throws {
        let names = BuiltinCommands.all.map(\.name.rawValue)
        #expect(Set(names).count == names.count)
        #expect(
            Set(names)
                == [
                    "agent.info", "agent.set-log-level", "agent.collect-logs", "agent.running-runs", "run.stop", "agent.restart", "agent.shutdown",
                    "file.put", "file.get", "host.facts",
                ])
        for command in BuiltinCommands.all {
            #expect(!command.description.isEmpty)
            let schema = command.parameterSchema
            #expect(schema["type"] == "object")
            #expect(schema["additionalProperties"] == false)
            guard case .object(let properties)? = schema["properties"] else {
                Issue.record("\(command.name): no properties")
                continue
            }
            #expect(Set(properties.keys) == Set(command.parameters.map(\.name)), "\(command.name)")
            #expect(command.resultSchema["type"] == "object", "\(command.name)")
            // Every schema is plain JSON.
            let text = schema.jsonText()
            #expect(try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) == schema)
        }
        #expect(BuiltinCommands.named("agent.info")?.name == .agentInfo)
        #expect(BuiltinCommands.named("ForceShutdownAgent") == nil)
    }

    static func problems(_ name: String, _ json: String?) throws -> [String] {
        let command = try #require(BuiltinCommands.named(name))
        let args = try json.map { try JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) }
        return command.problems(with: args).map(\.description)
    }

    @Test func argumentsAreCheckedAgainstTheParameters() throws {
        let cases: [(String, String?, [String])] = [
            ("agent.info", nil, []),
            ("agent.info", "{}", []),
            ("agent.info", #"{"verbose": true}"#, ["verbose: is not a parameter of agent.info"]),
            ("agent.info", "[1]", ["must be a JSON object"]),
            ("agent.set-log-level", "{}", ["level: is required"]),
            ("agent.set-log-level", #"{"level": "debug"}"#, []),
            ("agent.set-log-level", #"{"level": "DEBUG"}"#, ["level: must be one of trace, debug, info, notice, warning, error, critical"]),
            ("agent.set-log-level", #"{"level": 3}"#, ["level: must be a string"]),
            ("agent.collect-logs", #"{"lines": 0}"#, ["lines: must be from 1 to 2000"]),
            ("agent.collect-logs", #"{"lines": 10.0}"#, []),
            ("agent.collect-logs", #"{"lines": 1.5}"#, ["lines: must be an integer"]),
            ("run.stop", #"{"runId": "not a run"}"#, ["runId: is not a run id"]),
            ("agent.shutdown", #"{"mode": "forced", "timeoutSeconds": 5}"#, []),
            ("agent.shutdown", #"{"mode": "now"}"#, ["mode: must be one of graceful, forced"]),
            ("file.put", #"{"path": "/tmp/x", "content": "aGk="}"#, []),
            ("file.put", #"{"path": "tmp/x", "content": "aGk="}"#, ["path: must be an absolute path"]),
            ("file.put", #"{"path": "/tmp/../etc/passwd", "content": "aGk="}"#, ["path: must not contain '..'"]),
            ("file.put", #"{"path": "/tmp/x", "content": "not base64!"}"#, ["content: must be standard base64"]),
            ("file.put", #"{"path": "/tmp/x", "content": "aGk=", "mode": "0999"}"#, [#"mode: must be octal digits from 000 to 7777, like "0644""#]),
            ("file.put", #"{"content": "aGk="}"#, ["path: is required"]),
            ("file.get", #"{"path": "/etc/hostname", "maxBytes": 999999}"#, ["maxBytes: must be from 1 to 46080"]),
        ]
        for (name, json, expected) in cases {
            #expect(try Self.problems(name, json) == expected, "\(name) \(json ?? "nil")")
        }
        let tooBig = Data(count: BuiltinCommands.maxPutBytes + 1).base64EncodedString()
        #expect(try Self.problems("file.put", #"{"path": "/tmp/x", "content": "\#(tooBig)"}"#) == ["content: decodes to 524289 bytes; at most 524288"])
    }

    @Test func defaultsAreFilledIn() throws {
        let shutdown = try #require(BuiltinCommands.named("agent.shutdown"))
        #expect(shutdown.arguments(nil) == ["mode": "graceful", "timeoutSeconds": 300])
        #expect(shutdown.arguments(["mode": "forced"]) == ["mode": "forced", "timeoutSeconds": 300])
        let put = try #require(BuiltinCommands.named("file.put"))
        #expect(put.arguments(["path": "/x", "content": ""])["mode"] == "0644")
        #expect(BuiltinCommand.fileMode("0644") == 0o644)
        #expect(BuiltinCommand.fileMode("4755") == 0o4755)
        #expect(BuiltinCommand.fileMode("64") == nil)
    }
}
