import Foundation
import HTTPTypes
import KlevrAPI
import OpenAPIRuntime
import Testing

@testable import KlevrClient

/// The configured generated client: the credential on every request, and every answer outside 2xx
/// one error with its problem document, without sockets (a transport that records and answers).
@Suite struct ManagerClientTests {
    /// Records the requests it is given and answers each with the same status and body.
    final class RecordingTransport: ClientTransport, @unchecked Sendable {
        // Only touched by the one request of each test, awaited before the check.
        private(set) var requests: [HTTPRequest] = []
        let status: HTTPResponse.Status
        let contentType: String
        let body: String

        init(status: HTTPResponse.Status, contentType: String = "application/problem+json", body: String) {
            self.status = status
            self.contentType = contentType
            self.body = body
        }

        func send(_ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String) async throws -> (HTTPResponse, HTTPBody?) {
            requests.append(request)
            var fields = HTTPFields()
            fields[.contentType] = contentType
            return (HTTPResponse(status: status, headerFields: fields), HTTPBody(self.body))
        }
    }

    static let problem = #"{"type":"https://klevr.dev/problems/not-found","title":"Not Found","status":404,"detail":"no zone named edge"}"#

    @Test func aTokenIsSentAndADocumentedRefusalIsOneErrorWithItsProblem() async throws {
        let transport = RecordingTransport(status: .notFound, body: Self.problem)
        let config = try ManagerClientConfig(server: "http://127.0.0.1:8090/", credential: .bearer("klt_secret"))
        let client = ManagerClient.make(config, transport: transport)
        let error = await #expect(throws: ClientError.self) { _ = try await client.getZone(path: .init(zone: "edge")).ok }
        let thrown = try #require(error)
        let refusal = try #require(ManagerClient.cause(of: thrown) as? ManagerRefusal)
        #expect(refusal.status == 404)
        #expect(refusal.isProblem("not-found"))
        #expect(refusal.description == "no zone named edge (HTTP 404)")
        #expect(transport.requests.first?.headerFields[.authorization] == "Bearer klt_secret")
        #expect(transport.requests.first?.path == "/api/v1/zones/edge")
    }

    @Test func aSessionSendsItsCookieAndCSRFToken() async throws {
        let transport = RecordingTransport(status: .unauthorized, body: #"{"type":"about:blank","title":"x","status":401,"detail":"log in"}"#)
        let config = try ManagerClientConfig(server: "https://manager.example:8090", credential: .session(cookie: "klevr_session=abc", csrf: "t0k"))
        _ = try? await ManagerClient.make(config, transport: transport).logout()
        let request = try #require(transport.requests.first)
        #expect(request.headerFields[.cookie] == "klevr_session=abc")
        #expect(request.headerFields[try #require(HTTPField.Name("X-Klevr-CSRF"))] == "t0k")
        #expect(request.headerFields[.authorization] == nil)
    }

    @Test func anUndocumentedStatusWithoutAProblemIsTheSameErrorWithABoundedBody() async throws {
        let huge = String(repeating: "x", count: ManagerRefusal.bodyLimit * 2)
        let transport = RecordingTransport(status: .init(code: 418), contentType: "text/plain", body: huge)
        let client = ManagerClient.make(try ManagerClientConfig(server: "http://127.0.0.1:1"), transport: transport)
        let error = await #expect(throws: ClientError.self) { _ = try await client.listZones().ok }
        let thrown = try #require(error)
        let refusal = try #require(ManagerClient.cause(of: thrown) as? ManagerRefusal)
        #expect(refusal.status == 418)
        #expect(refusal.problem == nil)
        #expect(refusal.body.utf8.count == ManagerRefusal.bodyLimit)
        #expect(refusal.description == "HTTP 418: " + String(repeating: "x", count: 300))

        // What the generated client hands over as `.undocumented` maps to the same error.
        let mapped = await ManagerRefusal(undocumented: 500, UndocumentedPayload(headerFields: [:], body: HTTPBody(Self.problem)))
        #expect(mapped.status == 500 && mapped.problem?.detail == "no zone named edge")
    }

    @Test func onlyHTTPAndHTTPSURLsWithAHostAreManagers() throws {
        for bad in ["", "127.0.0.1:8090", "ftp://manager", "http://", "http://host:8090?x=1", "https:///path"] {
            #expect(throws: ManagerClientConfig.InvalidServerURL.self, "\(bad)") { try ManagerClientConfig(server: bad) }
        }
        #expect(try ManagerClientConfig(server: "https://[::1]:8090//").server == "https://[::1]:8090")
    }

    @Test func targetsNameTheirKind() throws {
        let id = "0f0f0f0f-0000-4000-8000-000000000001"
        #expect(Components.Schemas.Target.agent(id).kindName == "agent")
        #expect(Components.Schemas.Target.agent(id).agentID == id)
        #expect(Components.Schemas.Target.anyOnlineAgent.kindName == "any")
        #expect(Components.Schemas.Target.everyAgent.agentID == nil)
        // On the wire as the document says, and read back the same way.
        let encoded = String(decoding: try JSONEncoder().encode(Components.Schemas.Target.everyAgent), as: UTF8.self)
        #expect(encoded == #"{"kind":"all"}"#)
        let decoded = try JSONDecoder().decode(Components.Schemas.Target.self, from: Data(#"{"kind":"agent","agentId":"\#(id)"}"#.utf8))
        #expect(decoded.kindName == "agent" && decoded.agentID == id)
    }
}
