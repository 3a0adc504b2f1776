import Foundation
import HTTPTypes
import Hummingbird
import KlevrCore
import NIOCore

/// The web console: static HTML, CSS and JavaScript modules shipped in the `Console` resource folder
/// and served by the manager itself under `/console/` (no build step, nothing from elsewhere). The
/// pages talk to the same authenticated API as the CLI; the assets themselves are public, as a login
/// page must be.
///
/// Every asset is read once at start into memory, so a request can only ever name one of them: a
/// path that is not in the table is a 404, whatever dots or slashes it holds. With
/// `KLEVR_CONSOLE_DIR` set (development of the console), the files are read from that folder at
/// each request instead, with the same name rules.
public struct ConsoleAssets: Sendable {
    public struct Asset: Sendable {
        var body: ByteBuffer
        var contentType: String
        var etag: String
    }

    /// The assets by their path under `/console/` (`index.html`, `js/app.js`, ...).
    let assets: [String: Asset]
    /// Where to read the files at each request instead (development), if set.
    let developmentFolder: URL?

    /// Content-Security-Policy of every console answer: nothing but the manager itself, no inline script
    /// or style, no framing, no form posting elsewhere.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; "
        + "manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

    /// The name of this target's resource folder, which holds `Console`.
    public static let resourceBundle = "klevr_KlevrManager"

    /// The assets of this build (empty when the resource folder is missing: the console then says so).
    public static func bundled(environment: [String: String] = ProcessInfo.processInfo.environment) -> ConsoleAssets {
        if let folder = environment["KLEVR_CONSOLE_DIR"], !folder.isEmpty {
            return ConsoleAssets(assets: [:], developmentFolder: URL(fileURLWithPath: folder, isDirectory: true))
        }
        guard let root = ResourceBundle.named(resourceBundle)?.resourceURL?.appendingPathComponent("Console", isDirectory: true) else {
            return ConsoleAssets(assets: [:], developmentFolder: nil)
        }
        return ConsoleAssets(assets: load(root), developmentFolder: nil)
    }

    /// Reads every servable file under `root`.
    static func load(_ root: URL) -> [String: Asset] {
        var assets: [String: Asset] = [:]
        guard let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { return [:] }
        let base = root.standardizedFileURL.path + "/"
        for case let url as URL in enumerator {
            let path = url.standardizedFileURL.path
            guard path.hasPrefix(base) else { continue }
            let name = String(path.dropFirst(base.count))
            guard isServableName(name), let data = try? Data(contentsOf: url) else { continue }
            assets[name] = asset(data, name: name)
        }
        return assets
    }

    static func asset(_ data: Data, name: String) -> Asset {
        // FNV-1a of the bytes: the ETag only needs to change when the file does.
        let digest = data.reduce(into: UInt64(1469598103934665603)) { hash, byte in hash = (hash ^ UInt64(byte)) &* 1099511628211 }
        return Asset(body: ByteBuffer(bytes: data), contentType: contentType(name), etag: "\"\(String(digest, radix: 16))-\(data.count)\"")
    }

    /// Names are lowercase words, digits and dashes in at most two folders, with a known extension:
    /// no dot segment, no hidden file, nothing the table could be tricked with.
    static func isServableName(_ name: String) -> Bool {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...3).contains(parts.count), name.utf8.count <= 200 else { return false }
        for (index, part) in parts.enumerated() {
            let allowed = part.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" || $0 == "." }
            guard allowed, let first = part.first, first != ".", first != "-", !part.contains("..") else { return false }
            if index == parts.count - 1 {
                guard contentTypes.keys.contains(where: { part.hasSuffix("." + $0) }) else { return false }
            } else if part.contains(".") {
                return false
            }
        }
        return true
    }

    static let contentTypes: [String: String] = [
        "html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8",
        "svg": "image/svg+xml", "png": "image/png", "ico": "image/x-icon", "json": "application/json",
    ]

    static func contentType(_ name: String) -> String {
        let ext = name.split(separator: ".").last.map(String.init) ?? ""
        return contentTypes[ext] ?? "application/octet-stream"
    }

    /// The asset at `name`, or nil.
    func asset(named name: String) -> Asset? {
        guard Self.isServableName(name) else { return nil }
        if let developmentFolder {
            guard let data = try? Data(contentsOf: developmentFolder.appendingPathComponent(name)) else { return nil }
            return Self.asset(data, name: name)
        }
        return assets[name]
    }

    var isEmpty: Bool { assets.isEmpty && developmentFolder == nil }
}

/// Serves the console before any credential is looked at: `GET /` goes to `/console/`, and
/// `GET /console/<asset>` answers the asset with the console's security headers. Every other request
/// goes on to the API.
struct ConsoleMiddleware<Context: RequestContext>: RouterMiddleware {
    let console: ConsoleAssets

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard path == "/" || path == "/console" || path.hasPrefix("/console/") else { return try await next(request, context) }
        guard request.method == .get || request.method == .head else {
            var problem = Problem(.methodNotAllowed, type: "method-not-allowed", detail: "the console's pages allow GET, HEAD")
            problem.headers[.allow] = "GET, HEAD"
            throw problem
        }
        if path == "/" || path == "/console" {
            return Response(status: .found, headers: Self.securityHeaders + [.location: "/console/"])
        }
        var name = String(path.dropFirst("/console/".count))
        if name.isEmpty { name = "index.html" }
        if console.isEmpty {
            throw Problem(.serviceUnavailable, type: "console-missing", detail: "this build of klevr has no console assets; the API works")
        }
        guard let asset = console.asset(named: name) else {
            throw Problem.notFound("the console has no \(path)")
        }
        var headers = Self.securityHeaders
        headers[.contentType] = asset.contentType
        headers[.eTag] = asset.etag
        // Revalidated at each load, so an upgraded manager serves its own pages at once.
        headers[.cacheControl] = "no-cache"
        if request.headers[.ifNoneMatch] == asset.etag {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentLength] = String(asset.body.readableBytes)
        let body: ResponseBody = request.method == .head ? ResponseBody() : ResponseBody(byteBuffer: asset.body)
        return Response(status: .ok, headers: headers, body: body)
    }

    static var securityHeaders: HTTPFields {
        var fields: HTTPFields = [.contentSecurityPolicy: ConsoleAssets.contentSecurityPolicy, .xContentTypeOptions: "nosniff"]
        for (name, value) in [("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer"), ("Cross-Origin-Opener-Policy", "same-origin")] {
            if let name = HTTPField.Name(name) { fields[name] = value }
        }
        return fields
    }
}
