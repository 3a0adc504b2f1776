import Foundation

/// Finds a target's resource folder (`klevr_KlevrAPI.resources` on Linux, `.bundle` on macOS) where
/// SwiftPM puts it: next to the `klevr` executable, in the build folder or in an installed copy of it
/// (or next to the test bundle, for tests on macOS).
///
/// SwiftPM's own `Bundle.module` stops the process (its accessor calls `fatalError`) when the folder is
/// missing, as it is when the binary alone was copied to another machine. This lookup returns nil
/// instead, so that the manager can say which folder is missing and where it looked.
public enum ResourceBundle {
    /// The folder that holds the executable (symbolic links resolved, as `Bundle.main` does).
    public static var executableFolder: URL { Bundle.main.bundleURL }

    /// The suffix SwiftPM gives resource folders on this platform.
    #if canImport(Darwin)
    static let suffixes = ["bundle", "resources"]
    #else
    static let suffixes = ["resources", "bundle"]
    #endif

    private final class Token {}

    /// Where the resources of `name` (`klevr_KlevrAPI`) are expected first: next to the executable.
    public static func expectedLocation(_ name: String, in folder: URL = executableFolder) -> URL {
        folder.appendingPathComponent("\(name).\(suffixes[0])", isDirectory: true)
    }

    /// The resource bundle of `name`, or nil when it is not next to the executable (nor next to the
    /// bundle holding this code, which differs for tests on macOS).
    public static func named(_ name: String, in folder: URL? = nil) -> Bundle? {
        var folders = folder.map { [$0] } ?? [executableFolder]
        if folder == nil {
            let own = Bundle(for: Token.self).bundleURL
            folders += [own, own.deletingLastPathComponent()]
        }
        for place in folders {
            for suffix in suffixes {
                let url = place.appendingPathComponent("\(name).\(suffix)", isDirectory: true)
                var isFolder: ObjCBool = false
                if FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder), isFolder.boolValue, let bundle = Bundle(url: url) {
                    return bundle
                }
            }
        }
        return nil
    }

    /// What to tell an operator when the resources of `name` are missing.
    public static func missing(_ name: String, what: String) -> String {
        "\(what) is missing: the folder \(expectedLocation(name).path) was not found. Install the klevr binary together with the "
            + "resource folders built next to it (docs/deploy.md)"
    }
}
