import KlevrAPI
import KlevrCore
import KlevrStore

/// What the generated handlers of every feature share: paging, ids, events as the API shows them.
extension ManagerAPI {
    /// A page size: absent is 50; otherwise 1 to 500.
    static func pageLimit(_ limit: Int?) throws -> Int {
        guard let limit else { return 50 }
        guard (1...500).contains(limit) else { throw Problem.invalid("limit", "must be an integer from 1 to 500") }
        return limit
    }

    /// An event cursor: an event id in its own spelling (no sign, no leading zeros, at most 18 digits).
    static func eventCursor(_ text: String?) throws -> Int64? {
        guard let text else { return nil }
        guard let id = Int64(text), id > 0, String(id) == text, text.count <= 18 else {
            throw Problem.invalid("cursor", "is not a cursor returned by this API")
        }
        return id
    }

    /// The cursor of the page after `events`: the last id of a full page, else none.
    static func nextCursor(_ events: [EventRecord], limit: Int) -> String? {
        events.count == limit ? events.last.map { String($0.id) } : nil
    }

    static func id(_ value: String) throws -> String {
        guard Validation.isValidID(value) else { throw Problem.badRequest("'\(value)' is not a valid id") }
        return value
    }

    /// An event as the API shows it; client addresses only to admins.
    static func view(_ event: EventRecord, admin: Bool) throws -> Components.Schemas.Event {
        guard let kind = Components.Schemas.Event.KindPayload(rawValue: event.kind.rawValue),
            let actorKind = Components.Schemas.Actor.KindPayload(rawValue: event.actor.kind.rawValue)
        else {
            throw StoreError.corrupt("event \(event.id) has a kind the API document does not list: \(event.kind.rawValue)")
        }
        return .init(
            id: event.id, kind: kind, at: event.at,
            actor: .init(kind: actorKind, id: event.actor.id, name: event.actor.name, address: admin ? event.actor.address : nil),
            zoneId: event.zoneID.isEmpty ? nil : event.zoneID, zone: event.zoneName, subject: event.subject,
            detail: .init(additionalProperties: event.detail))
    }
}

extension KlevrRequestContext {
    /// Whether the caller is a user with the admin role.
    var isAdmin: Bool {
        if case .user(let user, _) = principal { return user.role >= .admin }
        return false
    }
}
