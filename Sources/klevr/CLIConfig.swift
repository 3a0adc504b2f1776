import ArgumentParser
import Foundation
import KlevrAPI
import KlevrClient
import NIOSSL

/// The CLI's saved login: the manager URL, an API token and how the manager's certificate is
/// verified, in a file only the user can read. The user name and the token's id let `klevr login` and
/// `klevr user passwd` replace the token instead of leaving old ones behind (files saved by older
/// versions have neither).
struct CLIConfig: Codable {
    var server: String
    var token: String
    /// For an `https://` server: the `--ca` or `--ca-pin` of the login (with the pinned certificate it
    /// found); nil for the system trust store.
    var trust: ServerTrust?
    var username: String?
    var tokenId: String?

    /// The saved login, or nil when there is none (or it cannot be read).
    static func loadIfPresent() -> CLIConfig? {
        guard let data = FileManager.default.contents(atPath: path()) else { return nil }
        return try? JSONDecoder().decode(CLIConfig.self, from: data)
    }

    static func path() -> String {
        let env = ProcessInfo.processInfo.environment
        if let explicit = env["KLEVR_CONFIG"], !explicit.isEmpty { return explicit }
        let base = env["XDG_CONFIG_HOME"] ?? ((env["HOME"] ?? ".") + "/.config")
        return base + "/klevr/cli.json"
    }

    static func load() throws -> CLIConfig {
        let path = path()
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError("not logged in: run 'klevr login' first (no \(path))")
        }
        do {
            return try JSONDecoder().decode(CLIConfig.self, from: data)
        } catch {
            throw CLIError("cannot read \(path): \(error.localizedDescription); run 'klevr login' again")
        }
    }

    func save() throws {
        let path = Self.path()
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let data = try JSONEncoder().encode(self)
        // Created 0600 from the start, so the token is never readable by others, even briefly.
        FileManager.default.createFile(atPath: path + ".tmp", contents: nil, attributes: [.posixPermissions: 0o600])
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path + ".tmp"))
        try handle.write(contentsOf: data)
        try handle.synchronize()
        try handle.close()
        if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
        try FileManager.default.moveItem(atPath: path + ".tmp", toPath: path)
    }
}

/// Options every API command takes.
struct ClientOptions: ParsableArguments {
    @Option(help: "Output format: table or json.") var output: OutputFormat = .table

    /// Runs `body` with a client for the saved login.
    func withClient<T>(_ body: (Client) async throws -> T) async throws -> T {
        try await CLIConfig.load().withClient(body)
    }
}

extension CLIConfig {
    /// How many connections the CLI opens to the manager at once: `klevr task run` follows the log
    /// stream of every run of a task at the same time.
    static let connections = 260

    /// The client configuration of the saved login: its server, its token, and the manager verified
    /// as the login did.
    func clientConfig() throws -> ManagerClientConfig {
        do {
            return try ManagerClientConfig(server: server, credential: .bearer(token), trust: trust, maxConnections: Self.connections)
        } catch let invalid as ManagerClientConfig.InvalidServerURL {
            throw CLIError("the saved login names no usable manager: \(invalid); run 'klevr login' again")
        } catch {
            throw CLIError("cannot use the saved login's TLS settings: \(error); run 'klevr login' again")
        }
    }

    /// Runs `body` with a client for the saved server, verifying it as the login did.
    func withClient<T>(_ body: (Client) async throws -> T) async throws -> T {
        try await ManagerClient.with(try clientConfig(), body)
    }

    /// The options an agent needs to verify this server as the login does, for the command the CLI prints.
    var agentTrustOptions: String {
        switch trust {
        case .pinned(let pin, _): " --ca-pin \(pin)"
        case .certificateAuthority: " --ca CA_FILE"
        case .system, nil: ""
        }
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table
    case json
}

/// Runs an API call and turns its failure into a message for the user.
func api<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch {
        throw userFacing(ManagerClient.cause(of: error))
    }
}

/// What the user is told about a failed API call (the generated client's wrapping already removed).
func userFacing(_ error: any Error) -> any Error {
    switch error {
    case let refusal as ManagerRefusal:
        if let problem = refusal.problem, refusal.isProblem("password-change-required") {
            return CLIError(problem.detail)
        }
        if refusal.status == 401, refusal.problem == nil || refusal.isProblem("unauthorized") {
            return CLIError(
                "the manager refused the saved login (HTTP 401): the token was revoked or expired, or a password change or "
                    + "a disabled user ended it; run 'klevr login' again")
        }
        return CLIError("the manager refused: \(refusal)")
    case let error as CLIError:
        return error
    case let exit as ExitCode:
        return exit
    case let mismatch as ServerTrust.PinMismatch:
        return CLIError(mismatch.description)
    case let unusable as ServerTrust.PinUnusable:
        return CLIError(unusable.description)
    case let tls as NIOSSLError:
        return CLIError(
            "the manager's TLS certificate was not accepted (\(tls)); for a self-signed certificate log in with --ca-pin "
                + "(the pin the manager prints at start), or with --ca FILE for a private CA")
    case let error as DecodingError:
        return CLIError("unexpected answer from the manager: \(error)")
    case let tooLong as EventStreamTooLong:
        return CLIError(tooLong.description)
    default:
        return CLIError("cannot reach the manager: \(error)")
    }
}

/// Printing results as a table or as JSON.
enum Printer {
    static func json(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    static func table(_ header: [String], _ rows: [[String]]) {
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        print(line(header))
        for row in rows { print(line(row)) }
    }

    static func time(_ millis: Int64?) -> String {
        guard let millis else { return "-" }
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
    }
}
