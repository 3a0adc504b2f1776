import Foundation
import KlevrAPI

/// Reads the facts an agent reports about its host.
public enum HostFactsCollector {
    public static let agentVersion = "0.1.0"

    public static func collect(labels: [String: String] = [:]) -> HostFacts {
        let info = ProcessInfo.processInfo
        var os = info.operatingSystemVersionString
        if let release = try? String(contentsOfFile: "/etc/os-release", encoding: .utf8),
            let line = release.split(separator: "\n").first(where: { $0.hasPrefix("PRETTY_NAME=") })
        {
            os = line.dropFirst("PRETTY_NAME=".count).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        return HostFacts(hostname: String(info.hostName.prefix(255)), os: String(os.prefix(255)), version: agentVersion, addresses: [], labels: .init(additionalProperties: labels))
    }
}
