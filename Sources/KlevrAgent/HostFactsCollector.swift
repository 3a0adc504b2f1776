import Foundation
import KlevrAPI
import KlevrCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

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

extension HostFactsCollector {
    /// The result of the `host.facts` command: the enrollment facts and more about the host.
    static func details() -> KlevrCore.JSONValue {
        let facts = collect()
        let info = ProcessInfo.processInfo
        var names = utsname()
        var kernel = ""
        var architecture = ""
        if uname(&names) == 0 {
            kernel = withUnsafeBytes(of: &names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            architecture = withUnsafeBytes(of: &names.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        var loads = [Double](repeating: 0, count: 3)
        let got = getloadavg(&loads, 3)
        return [
            "hostname": .string(facts.hostname), "os": .string(facts.os), "kernel": .string(kernel), "architecture": .string(architecture),
            "cpuCount": .integer(Int64(info.processorCount)), "memoryBytes": .integer(Int64(clamping: info.physicalMemory)),
            "uptimeSeconds": .integer(Int64(info.systemUptime)), "loadAverage": .array(loads.prefix(max(0, Int(got))).map { .number($0) }),
            "agentVersion": .string(agentVersion),
        ]
    }
}
