import Foundation
import HTTPTypes
import HummingbirdTesting
import KlevrAPI
import KlevrCore
import KlevrManager
import KlevrStore
import Logging
import Testing

/// Credentials through the API: write-only values, roles, scopes, validation, deletion rules, and the
/// master key that seals them (rotation re-encrypts; a rotation cut short loses nothing).
@Suite struct CredentialTests {
    @Test func valuesAreWriteOnlyAndOnlyAdminsChangeCredentials() async throws {
        let harness = try await TestManager.make()
        let value = "value-" + UUID().uuidString
        try await harness.test { client in
            let admin = try await client.token()
            let operatorToken = try await client.user("olga", role: .operator_, admin: admin)
            let viewer = try await client.user("vera", role: .viewer, admin: admin)
            _ = try await client.zoneWithKey("z", admin: admin)
            let api = try client.api(token: admin)

            let zoneOwn = try await api.createCredential(body: .json(.init(name: "DB", zone: "z", value: value, description: "db"))).created.body.json
            let global = try await api.createCredential(body: .json(.init(name: "DB", value: value + "-global"))).created.body.json
            #expect(zoneOwn.scope == .zone && zoneOwn.zone == "z")
            #expect(global.scope == .global && global.zone == nil)
            // One name per scope.
            #expect(try await client.call(.post, "/api/v1/credentials", token: admin, json: #"{"name":"DB","zone":"z","value":"x"}"#).status == .conflict)
            // Bad input is a 422 naming the field, and stores nothing.
            for (body, field) in [
                (#"{"name":"1DB","value":"x"}"#, "name"), (#"{"name":"DB2","value":""}"#, "value"), (#"{"name":"DB-2","value":"x"}"#, "name"),
            ] {
                let answer = try await client.call(.post, "/api/v1/credentials", token: admin, json: body)
                #expect(answer.status == .unprocessableContent, "\(body)")
                #expect(answer.body.contains(field))
            }
            #expect(try await client.call(.post, "/api/v1/credentials", token: admin, json: #"{"name":"X","zone":"nope","value":"x"}"#).status == .notFound)

            // Operators and viewers see names, never values; they cannot create, change or delete.
            for token in [operatorToken, viewer] {
                let listed = try await client.call(.get, "/api/v1/credentials", token: token)
                #expect(listed.status == .ok)
                #expect(!listed.body.contains(value))
                #expect(try await client.call(.post, "/api/v1/credentials", token: token, json: #"{"name":"Y","value":"yyyy"}"#).status == .forbidden)
                #expect(try await client.call(.patch, "/api/v1/credentials/\(zoneOwn.id)", token: token, json: #"{"value":"zzzz"}"#).status == .forbidden)
                #expect(try await client.call(.delete, "/api/v1/credentials/\(zoneOwn.id)", token: token).status == .forbidden)
            }
            let zoneList = try await api.listCredentials(query: .init(zone: "z")).ok.body.json.items
            #expect(zoneList.map(\.id) == [zoneOwn.id])
            let globalList = try await api.listCredentials(query: .init(global: true)).ok.body.json.items
            #expect(globalList.map(\.id) == [global.id])
            let usable = try await api.listCredentials(query: .init(zone: "z", global: true)).ok.body.json.items
            #expect(Set(usable.map(\.id)) == [global.id, zoneOwn.id])
            for path in ["/api/v1/credentials", "/api/v1/credentials/\(zoneOwn.id)", "/api/v1/events?limit=500", "/api/v1/audit?limit=500"] {
                let answer = try await client.call(.get, path, token: admin)
                #expect(answer.status == .ok, "\(path)")
                #expect(!answer.body.contains(value), "\(path) shows the value")
            }

            // The value is stored sealed under the master key, bound to the credential.
            let zoneID = try #require(try await harness.manager.store.zone(named: "z")?.id)
            let sealed = try #require(try await harness.manager.store.sealedCredentials(["DB"], zoneID: zoneID)["DB"])
            #expect(sealed.id == zoneOwn.id)
            #expect(sealed.sealed.range(of: Data(value.utf8)) == nil)
            #expect(String(decoding: try harness.manager.config.secretBox.open(sealed.sealed, context: Store.credentialContext(zoneOwn.id)), as: UTF8.self) == value)
            #expect(throws: SecretBoxError.self) { try harness.manager.config.secretBox.open(sealed.sealed, context: Store.credentialContext(global.id)) }

            // A replaced value; the description alone; an empty change changes nothing.
            let updated = try await api.updateCredential(path: .init(id: zoneOwn.id), body: .json(.init(value: value + "-2"))).ok.body.json
            #expect(updated.updatedAt >= zoneOwn.updatedAt)
            _ = try await api.updateCredential(path: .init(id: zoneOwn.id), body: .json(.init(description: "new"))).ok.body.json
            #expect(try await api.getCredential(path: .init(id: zoneOwn.id)).ok.body.json.description == "new")

            // A task naming it keeps it: deleting is refused while the task has runs to start.
            let key = try await client.zoneWithKey("y", admin: admin)
            let agent = try await client.enroll(zone: "y", key: key.key)
            _ = try await api.createCredential(body: .json(.init(name: "TOKEN", zone: "y", value: "tttt-tttt")))
            let created = try await client.call(
                .post, "/api/v1/tasks", token: admin,
                json: #"{"zone":"y","target":{"kind":"agent","agentId":"\#(agent.agentId)"},"steps":[{"script":"true"}],"credentials":["TOKEN","DB"]}"#)
            #expect(created.status == .created, "\(created.body)")
            let task = try JSONDecoder().decode(Components.Schemas.Task.self, from: Data(created.body.utf8))
            #expect(task.credentials == ["TOKEN", "DB"])
            let tokenID = try #require(try await api.listCredentials(query: .init(zone: "y")).ok.body.json.items.first?.id)
            #expect(try await client.call(.delete, "/api/v1/credentials/\(tokenID)", token: admin).status == .conflict)
            // The global DB serves zone y (which has no DB of its own): it is in use too.
            #expect(try await client.call(.delete, "/api/v1/credentials/\(global.id)", token: admin).status == .conflict)
            // Zone z's DB serves no task of zone y: it goes.
            #expect(try await client.call(.delete, "/api/v1/credentials/\(zoneOwn.id)", token: admin).status == .noContent)
            _ = try await api.cancelTask(path: .init(id: task.id))
            #expect(try await client.call(.delete, "/api/v1/credentials/\(tokenID)", token: admin).status == .noContent)
            // A name that exists in neither scope is a 404 naming the entry.
            let unknown = try await client.call(
                .post, "/api/v1/tasks", token: admin, json: #"{"zone":"y","target":{"kind":"all"},"steps":[{"script":"true"}],"credentials":["DB","GONE"]}"#)
            #expect(unknown.status == .notFound)
            #expect(unknown.body.contains("credentials[1]"), "\(unknown.body)")
        }
        #expect(!harness.logs.text.contains(value), "the manager logged a credential's value")
    }

    @Test func rotatingTheMasterKeyReencryptsEveryCredentialAndAnInterruptedRotationLosesNothing() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("klevr-masterkey-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try await Store.open(.sqlite(path: directory + "/klevr.db"), logger: .init(label: "test"))
        do {
            try await store.migrate()
            let first = try MasterKeyFiles.load(dataDir: directory)
            let mode = try FileManager.default.attributesOfItem(atPath: directory + "/master.key")[.posixPermissions] as? Int
            #expect(mode == 0o600)
            var ids: [String] = []
            for index in 0..<3 {
                let id = Secrets.newID()
                _ = try await store.createCredential(
                    id: id, name: "C\(index)", zoneName: nil, description: "",
                    sealed: try first.seal(Data("secret-\(index)".utf8), context: Store.credentialContext(id)), by: "admin", now: 1, actor: .system)
                ids.append(id)
            }
            // A rotation cut short after its new key was written and the values re-encrypted, before the
            // files were renamed: every value still opens with the keys in the directory, and the next
            // rotation finishes it with the key already written.
            let next = MasterKey.generate()
            try next.write(to: directory + "/" + MasterKeyFiles.nextName)
            #expect(try await store.resealSecrets(with: SecretBox(current: next, previous: [first.current])) == 3)
            let interrupted = try MasterKeyFiles.load(dataDir: directory)
            #expect(interrupted.current.idHex == first.current.idHex)
            for (index, id) in ids.enumerated() {
                let sealed = try #require(try await store.sealedCredentials(["C\(index)"], zoneID: "none")["C\(index)"]?.sealed)
                #expect(String(decoding: try interrupted.open(sealed, context: Store.credentialContext(id)), as: UTF8.self) == "secret-\(index)")
            }
            let rotated = try await MasterKeyFiles.rotate(dataDir: directory) { box in try await store.resealSecrets(with: box) }
            #expect(rotated.count == 0)
            #expect(rotated.old == first.current.idHex && rotated.new == next.idHex)
            let second = try MasterKeyFiles.load(dataDir: directory)
            #expect(second.current.idHex == next.idHex)
            #expect(!FileManager.default.fileExists(atPath: directory + "/" + MasterKeyFiles.nextName))
            #expect(FileManager.default.fileExists(atPath: directory + "/" + MasterKeyFiles.retiredPrefix + first.current.idHex))
            let stored = try await store.sealedCredentials(["C0", "C1", "C2"], zoneID: "none")
            for (index, id) in ids.enumerated() {
                let sealed = try #require(stored["C\(index)"]?.sealed)
                #expect(try SecretBox.keyID(of: sealed) == second.current.id)
                #expect(String(decoding: try second.open(sealed, context: Store.credentialContext(id)), as: UTF8.self) == "secret-\(index)")
                // The old key alone no longer opens it.
                #expect(throws: SecretBoxError.self) { try SecretBox(current: first.current).open(sealed, context: Store.credentialContext(id)) }
            }
            // A second rotation with nothing under the old key re-encrypts all again (under the newest key).
            let again = try await MasterKeyFiles.rotate(dataDir: directory) { box in try await store.resealSecrets(with: box) }
            #expect(again.count == 3)
            // A key file that others may read is refused.
            chmod(directory + "/master.key", 0o644)
            #expect(throws: (any Error).self) { try MasterKeyFiles.load(dataDir: directory) }
        } catch {
            await store.database.close()
            throw error
        }
        await store.database.close()
    }
}
