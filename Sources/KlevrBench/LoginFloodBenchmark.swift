import Foundation
import KlevrAPI
import KlevrClient
import KlevrCore

/// `klevr bench logins`: starts `klevr manager` as its own process on loopback, sends failed logins with
/// huge user names (and then with many distinct short ones), and reports the manager's resident memory
/// (VmRSS and its peak VmHWM from /proc) before and after. The throttle and the login body limit must keep
/// it flat, whatever the names.
public struct LoginFloodBenchmark: Sendable {
    /// Failed logins with huge names.
    public var count: Int
    /// Bytes in each huge user name.
    public var nameBytes: Int
    /// Failed logins with distinct short names, afterwards.
    public var distinct: Int
    /// Requests in flight at once.
    public var concurrency: Int

    public init(count: Int = 10_000, nameBytes: Int = 65_536, distinct: Int = 10_000, concurrency: Int = 16) {
        self.count = count
        self.nameBytes = nameBytes
        self.distinct = distinct
        self.concurrency = concurrency
    }

    /// Runs the benchmark, printing its progress and, last, its result line.
    public func run() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("klevr-login-bench-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manager = try ManagerProcess(dataDir: directory)
        defer { manager.stop() }
        let base = try await manager.waitForURL(seconds: 60)
        say("manager pid \(manager.pid) at \(base)")
        let config = try ManagerClientConfig(server: base, timeout: .seconds(60), connectTimeout: .seconds(5), maxConnections: concurrency)
        try await ManagerClient.with(config) { client in try await measure(manager: manager, client: client) }
    }

    func measure(manager: ManagerProcess, client: Client) async throws {
        let before = manager.memory()
        say("before: rss \(before.rss) KiB")
        let huge = String(repeating: "a", count: nameBytes)
        let started = ContinuousClock.now
        var statuses = try await flood(client, count: count) { _ in huge }
        let afterHuge = manager.memory()
        say("after \(count) logins with \(nameBytes)-byte names in \(started.duration(to: .now)): rss \(afterHuge.rss) KiB, peak \(afterHuge.hwm) KiB")
        let distinctStatuses = try await flood(client, count: distinct) { "user-\($0)-\(UUID().uuidString.lowercased())" }
        statuses.merge(distinctStatuses, uniquingKeysWith: +)
        let after = manager.memory()
        say("after \(distinct) more with distinct short names: rss \(after.rss) KiB, peak \(after.hwm) KiB")
        let summary = statuses.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",")
        say("login_flood rss_before_kib=\(before.rss) rss_after_huge_kib=\(afterHuge.rss) rss_after_kib=\(after.rss) hwm_kib=\(after.hwm) statuses=\(summary)")
    }

    /// Sends `count` failed logins, `concurrency` at a time; counts the answers by status.
    func flood(_ client: Client, count: Int, name: @escaping @Sendable (Int) -> String) async throws -> [Int: Int] {
        let concurrency = self.concurrency
        return try await withThrowingTaskGroup(of: Int.self) { group in
            var statuses: [Int: Int] = [:]
            var sent = 0
            while sent < count || !group.isEmpty {
                while sent < count && sent - statuses.values.reduce(0, +) < concurrency {
                    let index = sent
                    sent += 1
                    group.addTask {
                        do {
                            _ = try await client.login(body: .json(.init(username: name(index), password: "wrong-password"))).ok
                            return 200
                        } catch {
                            guard let refusal = ManagerClient.cause(of: error) as? ManagerRefusal else { throw error }
                            return refusal.status
                        }
                    }
                }
                guard let status = try await group.next() else { break }
                statuses[status, default: 0] += 1
            }
            return statuses
        }
    }
}

/// `klevr manager` as a child process on a free loopback port, with its own data dir.
final class ManagerProcess: @unchecked Sendable {
    private let process = Process()
    private let output = Pipe()
    var pid: Int32 { process.processIdentifier }

    init(dataDir: String) throws {
        process.executableURL = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = ["manager", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "error"]
        process.environment = ProcessInfo.processInfo.environment.merging(["KLEVR_ADMIN_PASSWORD": "bench-admin-password"]) { _, new in new }
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    /// Reads the manager's output until it says where it listens.
    func waitForURL(seconds: Int) async throws -> String {
        let handle = output.fileHandleForReading
        var text = ""
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline && process.isRunning {
            let data = handle.availableData
            if data.isEmpty { try await Task.sleep(for: .milliseconds(50)) }
            text += String(decoding: data, as: UTF8.self)
            if let range = text.range(of: "listening on "), let end = text[range.upperBound...].firstIndex(where: { $0 == " " || $0 == "\n" }) {
                return String(text[range.upperBound..<end])
            }
        }
        throw BenchError("the manager did not start: \(text)")
    }

    /// The process's resident memory now and at its peak, in KiB (Linux /proc).
    func memory() -> (rss: Int, hwm: Int) {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        func field(_ name: String) -> Int {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return -1 }
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? -1
        }
        return (field("VmRSS"), field("VmHWM"))
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }
}
