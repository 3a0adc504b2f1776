import Crypto
import KlevrAPI
import KlevrCore
import KlevrStore

/// Zones and their enrollment keys.
extension ManagerAPI {
    func listZones(_ input: Operations.ListZones.Input) async throws -> Operations.ListZones.Output {
        var zones: [Components.Schemas.Zone] = []
        for zone in try await store.zones() { zones.append(try await view(zone)) }
        return .ok(.init(body: .json(.init(items: zones, nextCursor: nil))))
    }

    func createZone(_ input: Operations.CreateZone.Input) async throws -> Operations.CreateZone.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("the body must be JSON") }
        var errors: [ProblemDocument.FieldError] = []
        if !Validation.isValidName(body.name) { errors.append(.init(field: "name", message: "use 1-63 lowercase letters, digits or '-'")) }
        if (body.description ?? "").unicodeScalars.count > 1000 { errors.append(.init(field: "description", message: "at most 1000 characters")) }
        if !errors.isEmpty { throw Problem.invalid(errors) }
        let zone = try await store.createZone(
            name: body.name, description: body.description ?? "", now: Clock.nowMillis(), actor: try context.actor)
        return .created(.init(body: .json(try await view(zone))))
    }

    func getZone(_ input: Operations.GetZone.Input) async throws -> Operations.GetZone.Output {
        .ok(.init(body: .json(try await view(try await zone(named: input.path.zone)))))
    }

    func deleteZone(_ input: Operations.DeleteZone.Input) async throws -> Operations.DeleteZone.Output {
        try await store.deleteZone(
            named: try Self.zoneName(input.path.zone), force: input.query.force ?? false, now: Clock.nowMillis(), actor: try context.actor)
        return .noContent(.init())
    }

    func zoneEvents(_ input: Operations.ZoneEvents.Input) async throws -> Operations.ZoneEvents.Output {
        let zone = try await zone(named: input.path.zone)
        var filter = EventFilter()
        filter.zone = zone.id
        let limit = try Self.pageLimit(input.query.limit)
        let events = try await store.events(filter, before: try Self.eventCursor(input.query.cursor), limit: limit)
        let admin = try context.isAdmin
        return .ok(
            .init(
                body: .json(
                    .init(items: try events.map { try Self.view($0, admin: admin) }, nextCursor: Self.nextCursor(events, limit: limit)))))
    }

    func listEnrollKeys(_ input: Operations.ListEnrollKeys.Input) async throws -> Operations.ListEnrollKeys.Output {
        let keys = try await store.enrollKeys(zoneName: try Self.zoneName(input.path.zone)).map(Self.view)
        return .ok(.init(body: .json(.init(items: keys, nextCursor: nil))))
    }

    func createEnrollKey(_ input: Operations.CreateEnrollKey.Input) async throws -> Operations.CreateEnrollKey.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("the body must be JSON") }
        let expiresAt = try Self.expiry(body.expiresInSeconds.map(Int64.init))
        let key = Secrets.generate(.enrollKey) + "." + Keys.pin(of: config.signingKey.publicKey)
        let record = try await store.createEnrollKey(
            zoneName: try Self.zoneName(input.path.zone), keyHash: Secrets.hash(key), prefix: String(key.prefix(10)), now: Clock.nowMillis(),
            expiresAt: expiresAt, actor: try context.actor)
        return .created(.init(body: .json(.init(id: record.id, zone: record.zoneName, key: key, expiresAt: record.expiresAt))))
    }

    func rotateEnrollKey(_ input: Operations.RotateEnrollKey.Input) async throws -> Operations.RotateEnrollKey.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("the body must be JSON") }
        let expiresAt = try Self.expiry(body.expiresInSeconds.map(Int64.init))
        let key = Secrets.generate(.enrollKey) + "." + Keys.pin(of: config.signingKey.publicKey)
        let record = try await store.rotateEnrollKey(
            zoneName: try Self.zoneName(input.path.zone), id: try Self.id(input.path.id), newKeyHash: Secrets.hash(key),
            prefix: String(key.prefix(10)), now: Clock.nowMillis(), expiresAt: expiresAt, actor: try context.actor)
        return .created(.init(body: .json(.init(id: record.id, zone: record.zoneName, key: key, expiresAt: record.expiresAt))))
    }

    func revokeEnrollKey(_ input: Operations.RevokeEnrollKey.Input) async throws -> Operations.RevokeEnrollKey.Output {
        try await store.revokeEnrollKey(
            zoneName: try Self.zoneName(input.path.zone), id: try Self.id(input.path.id), now: Clock.nowMillis(), actor: try context.actor)
        return .noContent(.init())
    }

    /// An enrollment key's expiry: from a minute to 366 days from now, or none.
    static func expiry(_ seconds: Int64?) throws -> Int64? {
        guard let seconds else { return nil }
        guard (60...(366 * 86400)).contains(seconds) else {
            throw Problem.invalid("expiresInSeconds", "must be from 60 seconds to 366 days")
        }
        return Clock.nowMillis() + seconds * 1000
    }

    // MARK: - Views

    func zone(named name: String) async throws -> ZoneRecord {
        guard let zone = try await store.zone(named: try Self.zoneName(name)) else { throw Problem.notFound("no zone named '\(name)'") }
        return zone
    }

    static func zoneName(_ name: String) throws -> String {
        guard Validation.isValidName(name) else { throw Problem.notFound("no zone named '\(name)'") }
        return name
    }

    func view(_ zone: ZoneRecord) async throws -> Components.Schemas.Zone {
        let lease = try await store.lease(zoneID: zone.id)
        let primary = lease.flatMap { $0.expiresAt > Clock.nowMillis() ? $0.holder : nil }
        return .init(
            id: zone.id, name: zone.name, description: zone.description, createdAt: zone.createdAt, agents: zone.agents, primary: primary,
            epoch: lease?.epoch ?? 0)
    }

    static func view(_ key: EnrollKeyRecord) -> Components.Schemas.EnrollKey {
        .init(id: key.id, zone: key.zoneName, prefix: key.prefix, createdAt: key.createdAt, expiresAt: key.expiresAt, revokedAt: key.revokedAt)
    }
}
