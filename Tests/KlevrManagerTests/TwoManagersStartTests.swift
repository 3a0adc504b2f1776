import Foundation
import KlevrCore
@testable import KlevrManager
import KlevrStore
import Logging
import Testing

/// Two managers starting at once on one empty PostgreSQL database: the schema is migrated once, exactly
/// one first admin is created, and only the manager that created it has a password to show.
@Suite struct TwoManagersStartTests {
    @Test func exactlyOneFirstAdmin() async throws {
        guard let text = ProcessInfo.processInfo.environment["KLEVR_TEST_POSTGRES_URL"] else { return }
        let url = try DatabaseURL.parse(text)
        guard case .postgres(let host, let port, let username, let password, _) = url else {
            Issue.record("KLEVR_TEST_POSTGRES_URL is not a postgres:// URL")
            return
        }
        let logger = Logger(label: "test.two-managers")
        let name = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let admin = try await Database.open(url, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await admin.run() }
            try await admin.createDatabase(named: name)
            group.cancelAll()
        }
        let config = ManagerConfig(
            port: 0, database: .postgres(host: host, port: port, username: username, password: password, database: name), bcryptCost: 4)
        let (first, _) = try await Manager.bootstrap(config: config, logger: logger)
        let (second, _) = try await Manager.bootstrap(config: config, logger: logger)
        #expect(!first.prepared.isOpen)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await first.store.database.run() }
            group.addTask { try await second.store.database.run() }
            async let a = first.prepare()
            async let b = second.prepare()
            let passwords = try await [a, b].compactMap { $0 }
            #expect(passwords.count == 1)
            #expect(try await first.store.userCount() == 1)
            #expect(first.prepared.isOpen && second.prepared.isOpen)
            group.cancelAll()
        }
    }
}
