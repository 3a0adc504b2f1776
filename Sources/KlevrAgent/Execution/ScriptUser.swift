import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The account scripts run as (`--run-as`), resolved once at startup.
public struct ScriptUser: Sendable, Equatable {
    public var name: String
    public var uid: uid_t
    public var gid: gid_t
    /// All groups of the account, its primary group included.
    public var groups: [gid_t]
    public var home: String

    /// Why `--run-as` cannot be used.
    public enum LookupError: Error, Equatable, CustomStringConvertible {
        case unknownUser(String)
        case needsRoot(String)
        case missingSetpriv

        public var description: String {
            switch self {
            case .missingSetpriv: "--run-as: setpriv (util-linux) is needed to switch users and was not found in /usr/bin or /bin"
            case .unknownUser(let name): "--run-as: there is no user '\(name)' on this machine"
            case .needsRoot(let name): "--run-as \(name): switching to another user needs the agent to run as root"
            }
        }
    }

    /// Looks the account up in the user database.
    /// - Throws: ``LookupError/unknownUser(_:)`` when there is no such user, ``LookupError/needsRoot(_:)``
    ///   when it is another user and this process is not root.
    public static func lookup(_ name: String) throws(LookupError) -> ScriptUser {
        var entry = passwd()
        var found: UnsafeMutablePointer<passwd>?
        var storage = [CChar](repeating: 0, count: 16 * 1024)
        let status = getpwnam_r(name, &entry, &storage, storage.count, &found)
        guard status == 0, found != nil, !name.isEmpty else { throw .unknownUser(name) }
        let uid = entry.pw_uid
        let gid = entry.pw_gid
        let home = entry.pw_dir.map { String(cString: $0) } ?? "/"
        let user = ScriptUser(name: name, uid: uid, gid: gid, groups: groupList(name, gid), home: home)
        if user.uid != geteuid() && geteuid() != 0 { throw .needsRoot(name) }
        if user.uid != geteuid() && setprivPath == nil { throw .missingSetpriv }
        return user
    }

    /// Whether steps need another identity than the agent's own.
    var isOtherThanAgent: Bool { uid != geteuid() || gid != getegid() }

    private static func groupList(_ name: String, _ gid: gid_t) -> [gid_t] {
        var count: Int32 = 64
        while true {
            var groups = [gid_t](repeating: 0, count: Int(count))
            var asked = count
            #if canImport(Darwin)
            let status = groups.withUnsafeMutableBufferPointer { buffer in
                buffer.withMemoryRebound(to: Int32.self) { getgrouplist(name, Int32(gid), $0.baseAddress, &asked) }
            }
            #else
            let status = getgrouplist(name, gid, &groups, &asked)
            #endif
            if status >= 0 { return Array(groups.prefix(Int(asked))) }
            // Too small: glibc reports the size it needs.
            guard asked > count, asked < 65_536 else { return [gid] }
            count = asked
        }
    }
}

extension ScriptUser {
    /// Where `setpriv` is, if installed (it runs scripts as the `--run-as` user).
    static var setprivPath: String? {
        ["/usr/bin/setpriv", "/bin/setpriv"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
