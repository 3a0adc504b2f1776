import Foundation
import Hummingbird
import HummingbirdTesting
import KlevrCore
@testable import KlevrManager
import KlevrStore
import NIOCore
import SQLKit
import Testing

/// An unexpected error answers a bare 500, and the manager's log says what went wrong (not only a type name).
@Suite struct InternalErrorLogTests {
    @Test func aDatabaseErrorIsLoggedWithItsDescription() async throws {
        let harness = try await TestManager.make()
        let store = harness.manager.store
        let router = Router()
        router.add(middleware: ProblemMiddleware())
        router.get("/broken") { _, _ -> String in
            try await store.database.read { db in try await db.raw("SELECT no_such_column FROM users").run() }
            return "unreachable"
        }
        let app = Application(router: router, logger: harness.logs.logger())
        try await app.test(.router) { client in
            let answer = try await client.execute(uri: "/broken", method: .get) { ($0.status, String(buffer: $0.body)) }
            #expect(answer.0 == .internalServerError)
            #expect(!answer.1.contains("no_such_column"), "the client must not see the database's message")
        }
        #expect(harness.logs.text.contains("internal error"))
        #expect(harness.logs.text.contains("no such column: no_such_column"), "\(harness.logs.text)")
        await store.database.close()
    }
}
