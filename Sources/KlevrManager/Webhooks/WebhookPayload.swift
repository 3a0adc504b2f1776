import Foundation
import KlevrAPI
import KlevrCore
import KlevrStore

/// The body of a delivery (`WebhookPayload` in the document): the event's kind, its time in ISO 8601, and the
/// event as the events API shows it to non-admins (no client addresses). It is rendered once, when the delivery
/// is queued, and stored: every attempt sends the same bytes, and the signature covers exactly them.
struct WebhookPayload: Encodable {
    var type: String
    var timestamp: String
    var data: Components.Schemas.Event

    /// The body for an event.
    static func render(_ event: EventRecord) throws -> String {
        let date = Date(timeIntervalSince1970: Double(event.at) / 1000)
        let payload = WebhookPayload(
            type: event.kind.rawValue, timestamp: Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(date),
            data: try ManagerAPI.view(event, admin: false))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(payload), as: UTF8.self)
    }
}
