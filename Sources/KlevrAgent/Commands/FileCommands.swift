import Crypto
import Foundation
import KlevrCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `file.put` and `file.get`: small files, as the agent's own user (not `--run-as`). Both refuse
/// relative paths, `..`, and the agent's state directory (its keys and credential), also reached
/// through a symbolic link.
struct FileCommands {
    let stateDir: String

    /// Why the file at `path` may not be touched, or nil. The directory is resolved through its links.
    func refusal(_ path: String) -> String? {
        if let problem = BuiltinCommand.pathProblem(path) { return "path: \(problem)" }
        let directory = (path as NSString).deletingLastPathComponent
        guard let real = Self.realPath(directory) else { return "path: the directory \(directory) does not exist" }
        let state = Self.realPath(stateDir) ?? stateDir
        let file = real == "/" ? "/" + (path as NSString).lastPathComponent : real + "/" + (path as NSString).lastPathComponent
        if file == state || file.hasPrefix(state.hasSuffix("/") ? state : state + "/") {
            return "path: the agent's state directory is off limits"
        }
        return nil
    }

    func put(_ arguments: [String: JSONValue]) -> BuiltinCommandRunner.Outcome {
        guard let path = arguments["path"]?.stringValue, let text = arguments["content"]?.stringValue, let data = Data(base64Encoded: text)
        else { return .failed("path and content (base64) are required") }
        guard data.count <= BuiltinCommands.maxPutBytes else { return .failed("content: at most \(BuiltinCommands.maxPutBytes) bytes") }
        let modeText = arguments["mode"]?.stringValue ?? "0644"
        guard let mode = BuiltinCommand.fileMode(modeText) else { return .failed("mode: octal digits like 0644") }
        if let refusal = refusal(path) { return .failed(refusal) }
        do {
            try DurableFile.writeFresh(data, to: path, mode: mode_t(mode))
        } catch {
            return .failed("\(error)")
        }
        return .succeeded([
            "path": .string(path), "size": .integer(Int64(data.count)), "sha256": .string(Self.sha256(data)),
            "mode": .string(String(format: "%04o", Int(mode))),
        ])
    }

    func get(_ arguments: [String: JSONValue]) -> BuiltinCommandRunner.Outcome {
        guard let path = arguments["path"]?.stringValue else { return .failed("path is required") }
        let limit = Int(min(arguments["maxBytes"]?.integerValue ?? Int64(BuiltinCommands.maxGetBytes), Int64(BuiltinCommands.maxGetBytes)))
        if let refusal = refusal(path) { return .failed(refusal) }
        // The type and size as a first answer (not following a link); the read below is bounded anyway,
        // and O_NOFOLLOW refuses a link put there in between.
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else {
            return .failed("cannot read \(path): it does not exist or is not accessible")
        }
        guard (attributes[.type] as? FileAttributeType) == .typeRegular else { return .failed("\(path) is not a regular file") }
        let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
        guard size <= limit else { return .failed("\(path) has \(size) bytes; at most \(limit) are returned") }
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return .failed("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: limit + 1)
        var total = 0
        while total <= limit {
            let count = bytes.withUnsafeMutableBytes { raw in read(fd, raw.baseAddress.map { $0 + total }, limit + 1 - total) }
            if count < 0 && errno == EINTR { continue }
            if count < 0 { return .failed("read \(path): \(String(cString: strerror(errno)))") }
            if count == 0 { break }
            total += count
        }
        // The file grew while it was read.
        guard total <= limit else { return .failed("\(path) has more than \(limit) bytes") }
        let data = Data(bytes[..<total])
        return .succeeded([
            "path": .string(path), "size": .integer(Int64(total)), "sha256": .string(Self.sha256(data)), "content": .string(data.base64EncodedString()),
        ])
    }

    static func sha256(_ data: Data) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
