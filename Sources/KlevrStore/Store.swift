import Foundation
import KlevrCore
import Logging
import SQLKit

/// The manager's persistent state: every read and write of the domain goes through here.
///
/// All SQL of the project lives in this module, with bound parameters only.
public struct Store: Sendable {
    public let database: Database
    /// Wakes followers of runs, agents, zones and the event log when they change.
    public let hub: WakeupHub
    /// Fault injection for tests.
    public let hooks: StoreHooks

    /// Opens the database and applies pending migrations.
    public static func open(_ url: DatabaseURL, logger: Logger) async throws -> Store {
        let database = try await Database.open(url, logger: logger)
        return Store(database: database)
    }

    public init(database: Database, hub: WakeupHub = WakeupHub()) {
        self.database = database
        self.hub = hub
        self.hooks = StoreHooks()
    }

    /// Applies pending schema migrations.
    public func migrate() async throws {
        try await Migrations.migrate(database)
    }
}

extension Store {
    static func encodeJSON(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func decodeJSON<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }
}
