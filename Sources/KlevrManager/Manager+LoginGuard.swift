import Foundation
import HTTPTypes
import KlevrAPI
import KlevrCore
import KlevrStore

extension Manager {
    /// Admits a login attempt, charged as a failure until it succeeds, or refuses it when its client address
    /// must still wait after its failures (429 with `Retry-After`). See ``LoginThrottleState``.
    func admitLogin(client: String, now: Int64) async throws {
        let wait = await throttle.admit(client, now: now)
        guard wait > 0 else { return }
        var problem = Problem(.tooManyRequests, type: "rate-limited", detail: "too many failed logins from this address; try again later")
        problem.headers[.retryAfter] = String((wait + 999) / 1000)
        throw problem
    }

    /// The user a login names, or nil. A name that cannot exist (too long, not a valid name) is not
    /// looked up, and every login without a user still costs one bcrypt verification against a dummy hash,
    /// so that answers do not tell which names exist by their timing.
    func verifiedUser(username: String, password: String) async throws -> UserRecord? {
        if username.utf8.count <= 255, let user = try await store.user(named: username) { return user }
        _ = try await passwords.verifyUnknownUser(password)
        return nil
    }
}
