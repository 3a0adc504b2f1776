import Foundation
import KlevrAPI
import KlevrCore
import KlevrStore
import Logging

extension Manager {
    /// The values of the credentials a task names, opened with the master key for the one moment they are
    /// sealed to a run's agent: the zone's own credential of a name, else the global one. A name with
    /// neither (deleted since) is left out: the agent then fails the run, naming it.
    func credentialValues(of task: TaskRecord) async throws -> [String: String] {
        guard !task.credentials.isEmpty else { return [:] }
        var values: [String: String] = [:]
        for (name, stored) in try await store.sealedCredentials(task.credentials, zoneID: task.zoneID) {
            do {
                values[name] = String(decoding: try config.secretBox.open(stored.sealed, context: Store.credentialContext(stored.id)), as: UTF8.self)
            } catch {
                // A value the master key does not open (a key file lost or replaced): the run fails on the agent.
                logger.error("a credential does not open with the master key", metadata: ["credential.id": "\(stored.id)", "error": "\(error)"])
            }
        }
        return values
    }
}
