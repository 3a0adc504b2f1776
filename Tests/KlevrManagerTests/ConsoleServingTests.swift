import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KlevrCore
@testable import KlevrManager
import Testing

/// The console is served by the manager itself: its files only, with its security headers, to anyone
/// (the login page must load), and the API behind it still needs credentials.
@Suite struct ConsoleServingTests {
    static let csp = "default-src 'none'; script-src 'self'; style-src 'self'"

    @Test func theConsoleIsServedWithAStrictPolicyAndOnlyItsOwnFiles() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let root = try await client.call(.get, "/")
            #expect(root.status == .found)
            #expect(root.headers[.location] == "/console/")
            let index = try await client.call(.get, "/console/")
            #expect(index.status == .ok)
            #expect(index.headers[.contentType] == "text/html; charset=utf-8")
            #expect(index.body.contains(#"<script type="module" src="/console/js/app.js"></script>"#))
            let policy = try #require(index.headers[.contentSecurityPolicy])
            #expect(policy.hasPrefix(Self.csp))
            #expect(policy.contains("frame-ancestors 'none'"))
            #expect(!policy.contains("unsafe"))
            #expect(index.headers[.xContentTypeOptions] == "nosniff")

            let script = try await client.call(.get, "/console/js/app.js")
            #expect(script.status == .ok)
            #expect(script.headers[.contentType] == "text/javascript; charset=utf-8")
            #expect(script.headers[.contentSecurityPolicy]?.hasPrefix(Self.csp) == true)
            // Revalidation: the same ETag answers 304 with no body.
            let etag = try #require(script.headers[.eTag])
            let again = try await client.call(.get, "/console/js/app.js", headers: [.ifNoneMatch: etag])
            #expect(again.status == .notModified)
            #expect(again.body.isEmpty)
            let head = try await client.call(.head, "/console/css/console.css")
            #expect(head.status == .ok)
            #expect(head.body.isEmpty)

            // Nothing but the console's own files: no way out of its folder, no hidden or unknown file.
            for path in [
                "/console/../api/v1/zones", "/console/js/../index.html", "/console/%2e%2e/klevr.db", "/console/.hidden.js",
                "/console/js/app.js.map", "/console/nope.js", "/console//etc/passwd", "/console/js/pages/../../index.html",
                "/console/" + String(repeating: "a", count: 300) + ".js",
            ] {
                let answer = try await client.call(.get, path)
                #expect(answer.status == .notFound || answer.status == .unauthorized, "\(path): \(answer.status)")
                #expect(!answer.body.contains("<html"), "\(path)")
            }
            // Pages are read-only.
            let post = try await client.call(.post, "/console/index.html", json: "{}")
            #expect(post.status == .methodNotAllowed)
            #expect(post.headers[.allow] == "GET, HEAD")
            // The API behind the console still needs credentials.
            #expect(try await client.call(.get, "/api/v1/zones").status == .unauthorized)
        }
    }

    /// Every file in the console folder is servable by its name, so nothing the pages import is missing.
    @Test func everyConsoleFileIsServable() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/KlevrManager/Console")
        let loaded = ConsoleAssets.load(root)
        let enumerator = try #require(FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey]))
        var files: [String] = []
        for case let url as URL in enumerator where (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
            files.append(String(url.standardizedFileURL.path.dropFirst(root.standardizedFileURL.path.count + 1)))
        }
        #expect(!files.isEmpty)
        for file in files { #expect(loaded[file] != nil, "\(file) is in the console folder but would not be served") }
        // Imports between modules name files that exist.
        for file in files where file.hasSuffix(".js") {
            let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
            let folder = (file as NSString).deletingLastPathComponent
            for line in text.split(separator: "\n") where line.hasPrefix("import ") {
                guard let quote = line.firstIndex(where: { $0 == "'" || $0 == "\"" }) else { continue }
                let rest = line[line.index(after: quote)...]
                guard let end = rest.firstIndex(where: { $0 == "'" || $0 == "\"" }) else { continue }
                var parts = folder.split(separator: "/").map(String.init)
                for part in rest[..<end].split(separator: "/") {
                    if part == ".." { _ = parts.popLast() } else if part != "." { parts.append(String(part)) }
                }
                let target = parts.joined(separator: "/")
                #expect(loaded[target] != nil, "\(file) imports \(target), which does not exist")
            }
        }
    }

    /// The console's list of event kinds (it subscribes by kind) is the manager's.
    @Test func theConsoleKnowsEveryEventKind() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/KlevrManager/Console/js/events.js")
        let text = try String(contentsOf: file, encoding: .utf8)
        let start = try #require(text.range(of: "export const kinds = ["))
        let end = try #require(text.range(of: "];", range: start.upperBound..<text.endIndex))
        let listed = Set(text[start.upperBound..<end.lowerBound].split(separator: "'").enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) })
        #expect(listed == Set(EventKind.allCases.map(\.rawValue)))
    }

    /// A console page opened after the login reads its CSRF token from the session; an API token has
    /// no session.
    @Test func theSessionAnswersItsCSRFTokenToItsCookieOnly() async throws {
        let harness = try await TestManager.make()
        try await harness.test { client in
            let login = try await client.call(.post, "/api/v1/auth/login", json: #"{"username":"admin","password":"\#(TestManager.adminPassword)"}"#)
            let cookie = try #require(login.headers[.setCookie]?.split(separator: ";").first.map(String.init))
            let loginAnswer = try JSONSerialization.jsonObject(with: Data(login.body.utf8)) as? [String: Any]
            let csrf = try #require(loginAnswer?["csrfToken"] as? String)
            let session = try await client.call(.get, "/api/v1/auth/session", headers: [.cookie: cookie])
            #expect(session.status == .ok)
            let answer = try JSONSerialization.jsonObject(with: Data(session.body.utf8)) as? [String: Any]
            #expect(answer?["csrfToken"] as? String == csrf)
            #expect((answer?["user"] as? [String: Any])?["username"] as? String == "admin")
            #expect(try await client.call(.get, "/api/v1/auth/session").status == .unauthorized)
            let token = try await client.token()
            #expect(try await client.call(.get, "/api/v1/auth/session", token: token).status == .notFound)
            // After logging out the cookie has no session any more.
            #expect(try await client.call(.post, "/api/v1/auth/logout", headers: [.cookie: cookie, HTTPField.Name("X-Klevr-CSRF")!: csrf]).status == .noContent)
            #expect(try await client.call(.get, "/api/v1/auth/session", headers: [.cookie: cookie]).status == .unauthorized)
        }
    }
}
