import Foundation
import KlevrClient

extension ServerTrust {
    /// Where an agent keeps how it verifies the manager, so that restarts without `--ca` or
    /// `--ca-pin` keep verifying the same way.
    static func path(in stateDir: String) -> String { stateDir + "/manager-tls.json" }

    /// The choice saved in the state dir; nil when none was saved.
    static func load(stateDir: String) throws -> ServerTrust? {
        let path = path(in: stateDir)
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        do {
            return try JSONDecoder().decode(ServerTrust.self, from: data)
        } catch {
            throw InvalidOptions(description: "cannot read \(path): \(error); give --ca or --ca-pin again")
        }
    }

    /// Saves the choice (a pin without its certificate: each start fetches and checks it anew).
    func save(stateDir: String) throws {
        var choice = self
        if case .pinned(let pin, _) = self { choice = .pinned(pin, certificate: nil) }
        try DurableFile.makeDirectory(stateDir)
        try DurableFile.write(try JSONEncoder().encode(choice), to: Self.path(in: stateDir))
    }
}
