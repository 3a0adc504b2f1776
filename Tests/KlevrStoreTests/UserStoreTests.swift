import Foundation
import KlevrCore
import KlevrStore
import SQLKit
import Testing

/// Users, sessions and tokens in the store, on SQLite and PostgreSQL.
@Suite struct UserStoreTests {
    static let now: Int64 = 1_800_000_000_000

    @Test(arguments: Engine.available)
    func anUnknownStoredRoleIsAnErrorNotAViewer(engine: Engine) async throws {
        try await withStore(engine) { store in
            let user = try await store.createUser(username: "ann", passwordHash: "h", role: .viewer, now: Self.now)
            try await store.database.read { db in
                try await db.raw("UPDATE users SET role = 'superuser' WHERE id = \(bind: user.id)").run()
            }
            await #expect(throws: StoredValueError(table: "users", column: "role", value: "superuser")) {
                _ = try await store.user(named: "ann")
            }
        }
    }

    @Test(arguments: Engine.available)
    func disablingEndsSessionsAndTokensAndEnablingBringsNoneBack(engine: Engine) async throws {
        try await withStore(engine) { store in
            let bob = try await store.createUser(username: "bob", passwordHash: "h", role: .operator_, now: Self.now)
            try await store.createSession(userID: bob.id, tokenHash: "s1", csrf: "c", now: Self.now, expiresAt: Self.now + 60_000, actor: .system)
            let token = try await store.createToken(userID: bob.id, name: "t", tokenHash: "t1", now: Self.now, actor: .system)
            #expect(try await store.tokenUser(tokenHash: "t1", now: Self.now)?.tokenID == token.id)
            #expect(try await store.session(tokenHash: "s1", now: Self.now)?.user.id == bob.id)

            let disabled = try await store.setUserDisabled(id: bob.id, disabled: true, now: Self.now + 1, actor: .system)
            #expect(disabled.disabledAt == Self.now + 1)
            #expect(try await store.tokenUser(tokenHash: "t1", now: Self.now + 2) == nil)
            #expect(try await store.session(tokenHash: "s1", now: Self.now + 2) == nil)
            #expect(try await store.tokens(userID: nil).isEmpty)
            // A disabled user gets no new token either.
            await #expect(throws: StoreError.self) {
                _ = try await store.createToken(userID: bob.id, name: "t2", tokenHash: "t2", now: Self.now + 2, actor: .system)
            }

            let enabled = try await store.setUserDisabled(id: bob.id, disabled: false, now: Self.now + 3, actor: .system)
            #expect(enabled.disabledAt == nil)
            #expect(try await store.user(named: "bob")?.disabledAt == nil)
            #expect(try await store.tokenUser(tokenHash: "t1", now: Self.now + 4) == nil)
            #expect(try await store.session(tokenHash: "s1", now: Self.now + 4) == nil)
        }
    }

    @Test(arguments: Engine.available)
    func theLastEnabledAdminStays(engine: Engine) async throws {
        try await withStore(engine) { store in
            let admin = try await store.createUser(username: "admin", passwordHash: "h", role: .admin, now: Self.now)
            let conflict = StoreError.self
            await #expect(throws: conflict) { _ = try await store.setUserDisabled(id: admin.id, disabled: true, now: Self.now, actor: .system) }
            await #expect(throws: conflict) { _ = try await store.setUserRole(id: admin.id, role: .operator_, now: 1_800_000_000_000, actor: .system) }
            await #expect(throws: conflict) { try await store.deleteUser(id: admin.id, now: 1_800_000_000_000, actor: .system) }
            #expect(try await store.user(id: admin.id) == admin)

            // A disabled second admin does not count; an enabled one does.
            let ada = try await store.createUser(username: "ada", passwordHash: "h", role: .admin, now: Self.now)
            _ = try await store.setUserDisabled(id: ada.id, disabled: true, now: Self.now, actor: .system)
            await #expect(throws: conflict) { _ = try await store.setUserRole(id: admin.id, role: .viewer, now: 1_800_000_000_000, actor: .system) }
            _ = try await store.setUserDisabled(id: ada.id, disabled: false, now: Self.now, actor: .system)
            #expect(try await store.setUserRole(id: admin.id, role: .viewer, now: 1_800_000_000_000, actor: .system).role == .viewer)
            await #expect(throws: conflict) { try await store.deleteUser(id: ada.id, now: 1_800_000_000_000, actor: .system) }
            await #expect(throws: StoreError.notFound("no user nobody")) { try await store.deleteUser(id: "nobody", now: 1_800_000_000_000, actor: .system) }
        }
    }

    @Test(arguments: Engine.available)
    func theLastTwoAdminsDisabledAtOnceLeaveOne(engine: Engine) async throws {
        try await withStore(engine) { store in
            let ids = [
                try await store.createUser(username: "a1", passwordHash: "h", role: .admin, now: Self.now).id,
                try await store.createUser(username: "a2", passwordHash: "h", role: .admin, now: Self.now).id,
            ]
            let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                for id in ids {
                    group.addTask {
                        do {
                            _ = try await store.setUserDisabled(id: id, disabled: true, now: Self.now, actor: .system)
                            return true
                        } catch let error as StoreError {
                            guard case .conflict = error else { throw error }
                            return false
                        }
                    }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(outcomes.count == 2 && outcomes.filter { $0 }.count == 1)
            #expect(try await store.users().filter { $0.disabledAt == nil }.count == 1)
        }
    }

    @Test(arguments: Engine.available)
    func aPasswordChangeKeepsOnlyTheSessionThatMadeIt(engine: Engine) async throws {
        try await withStore(engine) { store in
            let carl = try await store.createUser(username: "carl", passwordHash: "old", role: .viewer, mustChangePassword: true, now: Self.now)
            #expect(try await store.user(named: "carl")?.mustChangePassword == true)
            for hash in ["s1", "s2"] {
                try await store.createSession(userID: carl.id, tokenHash: hash, csrf: "c", now: Self.now, expiresAt: Self.now + 60_000, actor: .system)
            }
            _ = try await store.createToken(userID: carl.id, name: "t", tokenHash: "t1", now: Self.now, actor: .system)
            try await store.changePassword(userID: carl.id, passwordHash: "new", keepingSession: "s1", now: Self.now + 5, actor: .system)
            let changed = try #require(try await store.user(named: "carl"))
            #expect(changed.passwordHash == "new")
            #expect(!changed.mustChangePassword)
            #expect(changed.passwordChangedAt == Self.now + 5)
            #expect(try await store.session(tokenHash: "s1", now: Self.now + 6) != nil)
            #expect(try await store.session(tokenHash: "s2", now: Self.now + 6) == nil)
            #expect(try await store.tokenUser(tokenHash: "t1", now: Self.now + 6) == nil)
        }
    }

    @Test(arguments: Engine.available)
    func tokensExpireRecordTheirUseAndAreRevokedByTheirOwnerOrAnAdmin(engine: Engine) async throws {
        try await withStore(engine) { store in
            let ann = try await store.createUser(username: "ann", passwordHash: "h", role: .viewer, now: Self.now)
            let bob = try await store.createUser(username: "bob", passwordHash: "h", role: .viewer, now: Self.now)
            let expiring = try await store.createToken(userID: ann.id, name: "short", tokenHash: "ta", now: Self.now, expiresAt: Self.now + 1000, actor: .system)
            let other = try await store.createToken(userID: bob.id, name: "bobs", tokenHash: "tb", now: Self.now + 1, actor: .system)
            #expect(try await store.tokenUser(tokenHash: "ta", now: Self.now + 999)?.user.id == ann.id)
            #expect(try await store.tokenUser(tokenHash: "ta", now: Self.now + 1000) == nil)
            #expect(try await store.tokens(userID: ann.id).map(\.lastUsedAt) == [Self.now + 999])
            #expect(try await store.tokens(userID: nil).map(\.username) == ["ann", "bob"])

            await #expect(throws: StoreError.notFound("no token \(other.id)")) { try await store.deleteToken(id: other.id, userID: ann.id, now: 1_800_000_000_000, actor: .system) }
            #expect(try await store.deleteToken(id: other.id, userID: nil, now: 1_800_000_000_000, actor: .system).username == "bob")
            #expect(try await store.deleteToken(id: expiring.id, userID: ann.id, now: 1_800_000_000_000, actor: .system).name == "short")
            #expect(try await store.tokens(userID: nil).isEmpty)
        }
    }

    @Test(arguments: Engine.available)
    func deletingAUserTakesTheirCredentialsButNotWhatTheyCreated(engine: Engine) async throws {
        try await withStore(engine) { store in
            _ = try await store.createUser(username: "admin", passwordHash: "h", role: .admin, now: Self.now)
            let otto = try await store.createUser(username: "otto", passwordHash: "h", role: .operator_, now: Self.now)
            _ = try await store.createToken(userID: otto.id, name: "t", tokenHash: "t1", now: Self.now, actor: .system)
            try await store.createSession(userID: otto.id, tokenHash: "s1", csrf: "c", now: Self.now, expiresAt: Self.now + 60_000, actor: .system)
            let zone = try await store.createZone(name: "z1", description: "", now: Self.now, actor: .system)
            let task = TaskRecord(
                id: Secrets.newID(), name: "t", zoneID: zone.id, zoneName: zone.name, targetJSON: #"{"kind":"all"}"#,
                stepsJSON: #"[{"script":"true"}]"#, paramsJSON: "{}", timeoutSeconds: 60, createdAt: Self.now, createdBy: "otto", canceledAt: nil)
            _ = try await store.createTask(task, agentIDs: [], actor: .system)
            #expect(try await store.deleteUser(id: otto.id, now: 1_800_000_000_000, actor: .system).username == "otto")
            #expect(try await store.user(named: "otto") == nil)
            #expect(try await store.tokens(userID: nil).isEmpty)
            #expect(try await store.session(tokenHash: "s1", now: Self.now) == nil)
            #expect(try await store.task(id: task.id)?.createdBy == "otto")
        }
    }
}
