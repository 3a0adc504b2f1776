import Foundation
import KlevrCore
import SQLKit

extension Store {
    // MARK: - Credentials

    /// The context a credential's value is sealed for: bound to its id, so that a sealed value copied into
    /// another row does not open.
    public static func credentialContext(_ id: String) -> String { "credential:\(id)" }

    /// Run statuses whose task still needs its credentials (a dispatched run may be handed out again).
    static let unfinishedStatuses = "('scheduled', 'queued', 'dispatched', 'running', 'recovering')"

    /// Stores a credential: global when `zoneName` is nil. The value comes sealed (see ``credentialContext(_:)``),
    /// sealed for the id given; the event carries the name and scope, never the value.
    public func createCredential(
        id: String, name: String, zoneName: String?, description: String, sealed: Data, by user: String, now: Int64, actor: EventActor
    ) async throws -> CredentialRecord {
        try await change { db, events in
            var zoneID: String?
            if let zoneName {
                guard let zone = try await db.raw("SELECT id FROM zones WHERE name = \(bind: zoneName)").first() else {
                    throw StoreError.notFound("no zone named '\(zoneName)'")
                }
                zoneID = try zone.decode(column: "id", as: String.self)
            }
            let scope = zoneID ?? ""
            if try await db.raw("SELECT id FROM credentials WHERE scope = \(bind: scope) AND name = \(bind: name)").first() != nil {
                throw StoreError.conflict(
                    zoneName.map { "zone '\($0)' already has a credential named '\(name)'" } ?? "a global credential named '\(name)' already exists")
            }
            try await db.raw(
                """
                INSERT INTO credentials (id, name, scope, description, sealed, created_at, created_by, updated_at)
                VALUES (\(bind: id), \(bind: name), \(bind: scope), \(bind: description), \(bind: sealed.base64EncodedString()), \(bind: now),
                \(bind: user), \(bind: now))
                """
            ).run()
            events.append(
                .credentialCreated, actor: actor, zoneID: zoneID ?? "", subject: id, detail: ["name": name, "scope": zoneName ?? "global"], at: now)
            return CredentialRecord(
                id: id, name: name, zoneID: zoneID, zoneName: zoneName, description: description, createdAt: now, createdBy: user, updatedAt: now)
        }
    }

    static let credentialSelect = """
        SELECT c.id, c.name, c.scope, c.description, c.created_at, c.created_by, c.updated_at, z.name AS zone_name
        FROM credentials c LEFT JOIN zones z ON z.id = c.scope
        """

    /// The credentials, by scope then name: a zone's own (`zoneName`), the global ones (`global`), both
    /// (what the zone's tasks may use), or with neither, all of them.
    public func credentials(zoneName: String?, global: Bool = false) async throws -> [CredentialRecord] {
        try await database.read { db in
            var query = SQLQueryString(Self.credentialSelect)
            if let zoneName {
                guard let zone = try await db.raw("SELECT id FROM zones WHERE name = \(bind: zoneName)").first() else {
                    throw StoreError.notFound("no zone named '\(zoneName)'")
                }
                let zoneID = try zone.decode(column: "id", as: String.self)
                query = query + (global ? " WHERE c.scope IN ('', \(bind: zoneID))" : " WHERE c.scope = \(bind: zoneID)")
            } else if global {
                query = query + " WHERE c.scope = ''"
            }
            query = query + " ORDER BY c.scope, c.name LIMIT 10000"
            return try await db.raw(query).all().map(Self.credential(from:))
        }
    }

    public func credential(id: String) async throws -> CredentialRecord? {
        try await database.read { db in
            try await db.raw(SQLQueryString(Self.credentialSelect) + " WHERE c.id = \(bind: id)").first().map(Self.credential(from:))
        }
    }

    static func credential(from row: any SQLRow) throws -> CredentialRecord {
        let scope = try row.decode(column: "scope", as: String.self)
        return CredentialRecord(
            id: try row.decode(column: "id", as: String.self), name: try row.decode(column: "name", as: String.self),
            zoneID: scope.isEmpty ? nil : scope, zoneName: try row.decode(column: "zone_name", as: String?.self),
            description: try row.decode(column: "description", as: String.self), createdAt: try row.decode(column: "created_at", as: Int64.self),
            createdBy: try row.decode(column: "created_by", as: String.self), updatedAt: try row.decode(column: "updated_at", as: Int64.self))
    }

    /// Replaces a credential's value (sealed for its id) and/or its description.
    public func updateCredential(id: String, sealed: Data?, description: String?, now: Int64, actor: EventActor) async throws -> CredentialRecord {
        try await change { db, events in
            guard let row = try await db.raw(SQLQueryString(Self.credentialSelect) + " WHERE c.id = \(bind: id)").first() else {
                throw StoreError.notFound("no credential with this id")
            }
            var record = try Self.credential(from: row)
            if let sealed {
                try await db.raw("UPDATE credentials SET sealed = \(bind: sealed.base64EncodedString()) WHERE id = \(bind: id)").run()
            }
            if let description {
                try await db.raw("UPDATE credentials SET description = \(bind: description) WHERE id = \(bind: id)").run()
                record.description = description
            }
            try await db.raw("UPDATE credentials SET updated_at = \(bind: now) WHERE id = \(bind: id)").run()
            record.updatedAt = now
            var detail = ["name": record.name, "scope": record.zoneName ?? "global"]
            if sealed != nil { detail["value"] = "replaced" }
            if description != nil { detail["description"] = "changed" }
            events.append(.credentialUpdated, actor: actor, zoneID: record.zoneID ?? "", subject: id, detail: detail, at: now)
            return record
        }
    }

    /// Deletes a credential, unless a task that still has runs to start or occurrences to fire names it
    /// (in the credential's zone, or in any zone for a global one): those runs would then fail.
    public func deleteCredential(id: String, now: Int64, actor: EventActor) async throws {
        try await change { db, events in
            guard let row = try await db.raw(SQLQueryString(Self.credentialSelect) + " WHERE c.id = \(bind: id)").first() else {
                throw StoreError.notFound("no credential with this id")
            }
            let record = try Self.credential(from: row)
            // Names are letters, digits and '_', so the quoted name matches exactly one element of the JSON array.
            let pattern = "%\"\(record.name)\"%"
            var query = SQLQueryString(
                """
                SELECT t.id, t.name FROM tasks t WHERE t.credentials LIKE \(bind: pattern) AND t.canceled_at IS NULL
                AND ((t.cron IS NOT NULL AND t.next_fire_at IS NOT NULL)
                     OR EXISTS (SELECT 1 FROM runs r WHERE r.task_id = t.id AND r.status IN
                """) + SQLQueryString(Self.unfinishedStatuses) + "))"
            if let zoneID = record.zoneID { query = query + " AND t.zone_id = \(bind: zoneID)" }
            query = query + " LIMIT 5"
            let users = try await db.raw(query).all().map { try "'\($0.decode(column: "name", as: String.self))' (\($0.decode(column: "id", as: String.self)))" }
            if !users.isEmpty {
                throw StoreError.conflict(
                    "credential '\(record.name)' is named by tasks that still have runs or occurrences ahead: \(users.joined(separator: ", ")); cancel them first")
            }
            try await db.raw("DELETE FROM credentials WHERE id = \(bind: id)").run()
            events.append(
                .credentialDeleted, actor: actor, zoneID: record.zoneID ?? "", subject: id, detail: ["name": record.name, "scope": record.zoneName ?? "global"],
                at: now)
        }
    }

    /// Which of `names` exist for tasks of a zone (the zone's own or global).
    public func credentialNames(_ names: [String], zoneID: String) async throws -> Set<String> {
        guard !names.isEmpty else { return [] }
        return try await database.read { db in
            var found: Set<String> = []
            for row in try await db.raw("SELECT name FROM credentials WHERE scope IN ('', \(bind: zoneID))").all() {
                let name = try row.decode(column: "name", as: String.self)
                if names.contains(name) { found.insert(name) }
            }
            return found
        }
    }

    /// The sealed values a run of a task in `zoneID` receives, by name: the zone's credential of a name if
    /// it has one, else the global one. Names with neither are missing from the answer.
    public func sealedCredentials(_ names: [String], zoneID: String) async throws -> [String: (id: String, sealed: Data)] {
        guard !names.isEmpty else { return [:] }
        return try await database.read { db in
            var zone: [String: (id: String, sealed: Data)] = [:]
            var global: [String: (id: String, sealed: Data)] = [:]
            for row in try await db.raw("SELECT id, name, scope, sealed FROM credentials WHERE scope IN ('', \(bind: zoneID))").all() {
                let name = try row.decode(column: "name", as: String.self)
                guard names.contains(name) else { continue }
                let id = try row.decode(column: "id", as: String.self)
                let text = try row.decode(column: "sealed", as: String.self)
                guard let sealed = Data(base64Encoded: text) else { throw StoreError.corrupt("credential \(id) holds a value that is not base64") }
                if try row.decode(column: "scope", as: String.self).isEmpty { global[name] = (id, sealed) } else { zone[name] = (id, sealed) }
            }
            return global.merging(zone) { _, zoneOwn in zoneOwn }
        }
    }

    /// Re-encrypts every stored secret under the box's current key, in one transaction (see
    /// `klevr manager rotate-master-key`). Values already under it are left as they are.
    /// - Returns: how many values were re-encrypted.
    public func resealSecrets(with box: SecretBox) async throws -> Int {
        try await database.transaction { db in
            var count = 0
            for row in try await db.raw("SELECT id, sealed FROM credentials").all() {
                let id = try row.decode(column: "id", as: String.self)
                guard let sealed = Data(base64Encoded: try row.decode(column: "sealed", as: String.self)) else {
                    throw StoreError.corrupt("credential \(id) holds a value that is not base64")
                }
                guard try box.needsReseal(sealed) else { continue }
                let resealed = try box.reseal(sealed, context: Self.credentialContext(id))
                try await db.raw("UPDATE credentials SET sealed = \(bind: resealed.base64EncodedString()) WHERE id = \(bind: id)").run()
                count += 1
            }
            // Webhook secrets are sealed under the same key (Store+Webhooks).
            count += try await Self.resealWebhookSecrets(db, with: box)
            return count
        }
    }

    static func namesJSON(_ names: [String]) throws -> String {
        String(decoding: try JSONEncoder().encode(names), as: UTF8.self)
    }

    static func names(from row: any SQLRow, column: String) throws -> [String] {
        let text = try row.decode(column: column, as: String.self)
        do {
            return try JSONDecoder().decode([String].self, from: Data(text.utf8))
        } catch {
            throw StoredValueError(table: "tasks", column: column, value: String(text.prefix(100)))
        }
    }
}
