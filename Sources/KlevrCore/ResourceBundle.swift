import Foundation

/// Finds a target's resource folder (`klevr_KlevrAPI.resources`) where SwiftPM puts it: next to the
/// `klevr` executable, in the build folder or in an installed copy of it.
///
/// SwiftPM's own `Bundle.module` stops the process (its accessor calls `fatalError`) when the folder is
/// missing, as it is when the binary alone was copied to another machine. This lookup returns nil
/// instead, so that the manager can say which folder is missing and where it looked.
public enum ResourceBundle {
    /// The folder that holds the executable (symbolic links resolved, as `Bundle.main` does on Linux).
    public static var executableFolder: URL { Bundle.main.bundleURL }

    /// Where the resources of `name` (`klevr_KlevrAPI`) are expected.
    public static func expectedLocation(_ name: String, in folder: URL = executableFolder) -> URL {
        folder.appendingPathComponent("\(name).resources", isDirectory: true)
    }

    /// The resource bundle of `name`, or nil when it is not next to the executable.
    public static func named(_ name: String, in folder: URL = executableFolder) -> Bundle? {
        let url = expectedLocation(name, in: folder)
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder), isFolder.boolValue else { return nil }
        return Bundle(url: url)
    }

    /// What to tell an operator when the resources of `name` are missing.
    public static func missing(_ name: String, what: String) -> String {
        "\(what) is missing: the folder \(expectedLocation(name).path) was not found. Install the klevr binary together with the "
            + "*.resources folders built next to it (docs/deploy.md)"
    }
}
