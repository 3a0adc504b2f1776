import Foundation
import KlevrCore
import KlevrStore

/// Webhook secrets at rest: sealed under the master key, bound to their webhook (`webhook-secret:<id>`), so
/// that a sealed value copied to another webhook's row does not open.
extension Manager {
    static func webhookSecretContext(_ webhookID: String) -> String { Store.webhookSecretContext(webhookID) }

    /// The secret sealed for storage (base64).
    func sealWebhookSecret(_ secret: WebhookSecret, webhookID: String) throws -> String {
        try config.secretBox.seal(Data(secret.text.utf8), context: Self.webhookSecretContext(webhookID)).base64EncodedString()
    }

    /// The stored secret of a webhook, opened.
    func openWebhookSecret(_ sealed: String, webhookID: String) throws -> WebhookSecret {
        guard let data = Data(base64Encoded: sealed) else { throw ManagerError("the stored secret of webhook \(webhookID) is not base64") }
        let opened = try config.secretBox.open(data, context: Self.webhookSecretContext(webhookID))
        return try WebhookSecret(parsing: String(decoding: opened, as: UTF8.self))
    }
}
