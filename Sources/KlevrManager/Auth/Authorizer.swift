import Hummingbird
import KlevrAPI
import KlevrCore
import KlevrStore

/// The one place that decides who may call what: the role of each operation comes from its
/// `x-klevr-role` in the OpenAPI document, so the code and the document cannot disagree.
///
/// Runs after ``Authenticator`` (which only establishes who is calling). A request that matches no
/// operation of the document still needs credentials; the router then answers it (404 or 405).
struct Authorizer: RouterMiddleware {
    typealias Context = KlevrRequestContext

    let operations: [OpenAPIDocument.Operation]

    /// The only routes a user whose password must be changed may call (besides the public ones).
    static let passwordChangeRoutes: Set<String> = ["POST /api/v1/me/password", "POST /api/v1/auth/logout", "GET /api/v1/me", "GET /api/v1/auth/session"]

    init(operations: [OpenAPIDocument.Operation]) {
        // Literal segments before templates, so `/agents/{id}` never shadows a fixed path of the same shape.
        self.operations = operations.sorted { $0.path.filter { $0 == "{" }.count < $1.path.filter { $0 == "{" }.count }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let method = request.method.rawValue == "HEAD" ? "GET" : request.method.rawValue
        let operation = operations.first { $0.matches(method: method, path: request.uri.path) }
        if operation?.role == "public" { return try await next(request, context) }
        guard let principal = context.principal else {
            var problem = Problem.unauthorized
            problem.headers[.wwwAuthenticate] = "Bearer"
            throw problem
        }
        // A user whose (generated) password must be changed may only change it, read /me and log out.
        if case .user(let user, _) = principal, user.mustChangePassword,
            !Self.passwordChangeRoutes.contains("\(request.method.rawValue) \(request.uri.path)")
        {
            throw Problem.passwordChangeRequired(user.username)
        }
        guard let operation else { return try await next(request, context) }
        switch (operation.role, principal) {
        case ("agent", .agent):
            break
        case ("agent", .user):
            throw Problem.forbidden("\(operation.operationID) is for agents")
        case (_, .agent):
            throw Problem.forbidden("\(operation.operationID) is for users, not agents")
        case (let name, .user(let user, _)):
            guard let role = Role(rawValue: name) else { throw Problem.forbidden("\(operation.operationID) has no role a user can hold") }
            guard user.role >= role else {
                throw Problem.forbidden("\(operation.operationID) needs the \(role.rawValue) role; you are \(user.role.rawValue)")
            }
        }
        return try await next(request, context)
    }
}
