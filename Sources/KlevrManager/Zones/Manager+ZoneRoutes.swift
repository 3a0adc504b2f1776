import Crypto
import Foundation
import Logging
import Hummingbird
import KlevrAPI
import KlevrCore
import KlevrStore

extension Manager {
    func addZoneRoutes(to router: Router<KlevrRequestContext>) {
        router.get("/api/v1/zones") { _, context in
            _ = try context.requireUser()
            var views: [ZoneView] = []
            for zone in try await store.zones() { views.append(try await view(zone)) }
            return try JSONBody.response(Page(items: views, nextCursor: nil))
        }
        router.post("/api/v1/zones") { request, context in
            _ = try context.requireUser()
            let body = try await JSONBody.decode(ZoneCreateRequest.self, from: request)
            var errors: [ProblemDocument.FieldError] = []
            if !Validation.isValidName(body.name) { errors.append(.init(field: "name", message: "use 1-63 lowercase letters, digits or '-'")) }
            if (body.description ?? "").unicodeScalars.count > 1000 { errors.append(.init(field: "description", message: "at most 1000 characters")) }
            if !errors.isEmpty { throw Problem.invalid(errors) }
            let zone = try await store.createZone(name: body.name, description: body.description ?? "", now: Clock.nowMillis(), actor: context.actor)
            return try JSONBody.response(try await view(zone), status: .created)
        }
        router.get("/api/v1/zones/{zone}") { _, context in
            _ = try context.requireUser()
            return try JSONBody.response(try await view(try await zone(context)))
        }
        router.get("/api/v1/zones/{zone}/events") { request, context in
            _ = try context.requireUser()
            let zone = try await zone(context)
            var filter = EventFilter()
            filter.zone = zone.id
            let limit = try Self.pageLimit(request)
            let events = try await store.events(filter, before: try Self.eventCursor(request), limit: limit)
            return try JSONBody.response(Page(items: events.map { Self.view($0, for: context) }, nextCursor: Self.nextCursor(events, limit: limit)))
        }
        router.delete("/api/v1/zones/{zone}") { request, context in
            _ = try context.requireUser()
            let force = try Self.flag(request, "force")
            try await store.deleteZone(named: try Self.zoneName(context), force: force, now: Clock.nowMillis(), actor: context.actor)
            return Response(status: .noContent)
        }
        router.get("/api/v1/zones/{zone}/enroll-keys") { _, context in
            _ = try context.requireUser()
            let keys = try await store.enrollKeys(zoneName: try Self.zoneName(context)).map(Self.view)
            return try JSONBody.response(Page(items: keys, nextCursor: nil))
        }
        router.post("/api/v1/zones/{zone}/enroll-keys") { request, context in
            _ = try context.requireUser()
            let body = try await JSONBody.decode(EnrollKeyCreateRequest.self, from: request)
            let expiresAt = try Self.expiry(body.expiresInSeconds)
            let key = Secrets.generate(.enrollKey) + "." + Keys.pin(of: config.signingKey.publicKey)
            let record = try await store.createEnrollKey(
                zoneName: try Self.zoneName(context), keyHash: Secrets.hash(key), prefix: String(key.prefix(10)), now: Clock.nowMillis(),
                expiresAt: expiresAt, actor: context.actor)
            return try JSONBody.response(
                EnrollKeyCreated(id: record.id, zone: record.zoneName, key: key, expiresAt: record.expiresAt), status: .created)
        }
        router.post("/api/v1/zones/{zone}/enroll-keys/{id}/rotate") { request, context in
            _ = try context.requireUser()
            let body = try await JSONBody.decode(EnrollKeyCreateRequest.self, from: request)
            let expiresAt = try Self.expiry(body.expiresInSeconds)
            let key = Secrets.generate(.enrollKey) + "." + Keys.pin(of: config.signingKey.publicKey)
            let record = try await store.rotateEnrollKey(
                zoneName: try Self.zoneName(context), id: try Self.id(context), newKeyHash: Secrets.hash(key), prefix: String(key.prefix(10)),
                now: Clock.nowMillis(), expiresAt: expiresAt, actor: context.actor)
            return try JSONBody.response(
                EnrollKeyCreated(id: record.id, zone: record.zoneName, key: key, expiresAt: record.expiresAt), status: .created)
        }
        router.delete("/api/v1/zones/{zone}/enroll-keys/{id}") { _, context in
            _ = try context.requireUser()
            try await store.revokeEnrollKey(zoneName: try Self.zoneName(context), id: try Self.id(context), now: Clock.nowMillis(), actor: context.actor)
            return Response(status: .noContent)
        }
    }

    func zone(_ context: KlevrRequestContext) async throws -> ZoneRecord {
        let name = try Self.zoneName(context)
        guard let zone = try await store.zone(named: name) else { throw Problem.notFound("no zone named '\(name)'") }
        return zone
    }

    static func zoneName(_ context: KlevrRequestContext) throws -> String {
        let name = context.parameters.get("zone") ?? ""
        guard Validation.isValidName(name) else { throw Problem.notFound("no zone named '\(name)'") }
        return name
    }

    static func expiry(_ seconds: Int64?) throws -> Int64? {
        guard let seconds else { return nil }
        guard (60...(366 * 86400)).contains(seconds) else {
            throw Problem.invalid("expiresInSeconds", "must be from 60 seconds to 366 days")
        }
        return Clock.nowMillis() + seconds * 1000
    }

    func view(_ zone: ZoneRecord) async throws -> ZoneView {
        let lease = try await store.lease(zoneID: zone.id)
        let primary = lease.flatMap { $0.expiresAt > Clock.nowMillis() ? $0.holder : nil }
        return ZoneView(
            id: zone.id, name: zone.name, description: zone.description, createdAt: zone.createdAt, agents: zone.agents, primary: primary,
            epoch: lease?.epoch ?? 0)
    }

    static func view(_ key: EnrollKeyRecord) -> EnrollKeyView {
        EnrollKeyView(
            id: key.id, zone: key.zoneName, prefix: key.prefix, createdAt: key.createdAt, expiresAt: key.expiresAt, revokedAt: key.revokedAt)
    }
}
