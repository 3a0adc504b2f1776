import Foundation
import Hummingbird
import HummingbirdCore
import KlevrAPI
import KlevrCore
import KlevrServerGuard
import KlevrStore
import Logging
import ServiceLifecycle

/// The manager: its store, its wake-up hub and its HTTP application.
public struct Manager: Sendable {
    public let config: ManagerConfig
    public let store: Store
    public let logger: Logger
    let hub: WakeupHub
    let passwords: Passwords
    let throttle: LoginThrottle
    let startedAt: Int64
    /// The API's operations with the role each needs, read from the OpenAPI document.
    let operations: [OpenAPIDocument.Operation]
    let memberships = MembershipCache()
    let zoneMembers = ZoneMembers()
    /// Notices the manager's own stalls (see ``StallClock``), so that liveness does not blame agents for them.
    var stalls = StallClock()
    /// Opened once the schema is migrated: background services wait for it (on PostgreSQL the migrations
    /// run when the application starts, alongside its services).
    let prepared = Gate()
    /// Open connections and those closed for slowness (see ``ConnectionCap``).
    let connections = ConnectionCounter()
    /// The web console's pages (read once at start).
    let console = ConsoleAssets.bundled()

    /// Opens the store, applies migrations and creates the first admin if there is no user yet.
    /// - Returns: the manager, and the first admin's password when this start generated it (print it once).
    public static func bootstrap(config: ManagerConfig, logger: Logger) async throws -> (Manager, generatedAdminPassword: String?) {
        guard let document = OpenAPIDocument.text() else {
            throw ManagerError(ResourceBundle.missing(OpenAPIDocument.resourceBundle, what: "the API document (openapi.yaml)"))
        }
        let operations = try OpenAPIDocument.operations(document)
        let store = try await Store.open(config.database, logger: logger)
        let manager = Manager(
            config: config, store: store, logger: logger, hub: store.hub, passwords: Passwords(cost: config.bcryptCost),
            throttle: LoginThrottle(), startedAt: Clock.nowMillis(), operations: operations)
        if manager.console.isEmpty {
            logger.warning("\(ResourceBundle.missing(ConsoleAssets.resourceBundle, what: "the web console")); the API works without it")
        }
        if case .postgres = config.database {
            // The pool only connects once it runs as a service: `application` prepares it then.
            return (manager, nil)
        }
        do {
            let generated = try await manager.prepare()
            return (manager, generated)
        } catch {
            await store.database.close()
            throw error
        }
    }

    /// Migrates the schema and creates the first admin (returns the generated password, if any), then
    /// lets the background services start (see ``prepared``).
    ///
    /// Managers starting at once on one PostgreSQL database each run this: migrations take a lock, and
    /// of the first admins they try to create exactly one is stored (`users.username` is unique; the
    /// others' inserts are conflicts, and those managers generated no password to show).
    public func prepare() async throws -> String? {
        try await store.migrate()
        defer { prepared.open() }
        guard try await store.userCount() == 0 else { return nil }
        let password = config.adminPassword ?? Secrets.randomPassword()
        // A generated password has been printed to a console or a log: it must be replaced at first login.
        let mustChange = config.adminPassword == nil && config.generatedAdminMustChangePassword
        do {
            _ = try await store.createUser(
                username: "admin", passwordHash: try await passwords.hash(password), role: .admin, mustChangePassword: mustChange,
                now: Clock.nowMillis())
        } catch StoreError.conflict {
            logger.info("another manager created the first user 'admin'")
            return nil
        }
        logger.notice("created the first user 'admin'")
        return config.adminPassword == nil ? password : nil
    }

    /// The HTTP application with the database as its service.
    /// - Parameters:
    ///   - onGeneratedPassword: called with the first admin's password when a PostgreSQL database was
    ///     prepared at start and the password was generated (SQLite is prepared by ``bootstrap(config:logger:)``).
    ///   - onServerRunning: called with the bound port once the server listens.
    public func application(
        onGeneratedPassword: @escaping @Sendable (String) -> Void = { _ in },
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        var app = Application(
            router: router(),
            server: config.tls?.serverBuilder(http: httpConfiguration()) ?? .http1(configuration: httpConfiguration()),
            configuration: .init(
                address: .hostname(config.host, port: config.port), serverName: "klevr",
                availableConnectionsDelegate: ConnectionCap(limit: config.maxConnections, counter: connections)),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
        app.addServices(services())
        if case .postgres = config.database {
            app.beforeServerStarts {
                if let password = try await prepare() { onGeneratedPassword(password) }
            }
        }
        return app
    }

    /// HTTP/1 with the limits on slow clients (see ``SlowClientGuard``).
    func httpConfiguration() -> HTTP1Channel.Configuration {
        let limits = SlowClientGuard.Limits(
            head: .nanoseconds(Int64(config.headerTimeoutSeconds * 1e9)), body: .nanoseconds(Int64(config.bodyTimeoutSeconds * 1e9)),
            idle: .nanoseconds(Int64(config.idleTimeoutSeconds * 1e9)))
        let counter = connections
        return HTTP1Channel.Configuration(additionalChannelHandlers: [SlowClientGuard(limits: limits, closed: counter)])
    }

    /// The manager's long-running pieces besides its HTTP server, built in this one place for `klevr
    /// manager`, `klevr up`, the tests and the benchmarks (all of which run ``application(onGeneratedPassword:onServerRunning:)``):
    /// the database (the PostgreSQL pool, or closing SQLite), the stall watch and the liveness sweeper
    /// (which also retires agents that never confirmed their runs stopped) and the run scheduler (due
    /// runs queued, overdue ones expired), the webhook dispatcher (deliveries queued from the event log,
    /// sent and retried) and the retention sweeper (old history removed). The scheduler is left out when
    /// ``ManagerConfig/runsScheduler`` is off (tests that take its passes by hand).
    public func services() -> [any Service] {
        let scheduler: [any Service] = config.runsScheduler ? [RunScheduler(manager: self)] : []
        return [store.database, StallWatch(clock: stalls, logger: logger), LivenessSweeper(manager: self)] + scheduler
            + [WebhookDispatcher(manager: self), RetentionSweeper(manager: self)]
    }

    /// All routes of the manager. `operations` (default: the document's) decide who may call what.
    public func router(operations: [OpenAPIDocument.Operation]? = nil) -> Router<KlevrRequestContext> {
        let router = Router(context: KlevrRequestContext.self)
        router.add(middleware: ProblemMiddleware())
        router.add(middleware: ConsoleMiddleware(console: console))
        router.add(middleware: MethodNotAllowedMiddleware(methodsByPath: OpenAPIDocument.text().map(OpenAPIDocument.methodsByPath) ?? [:]))
        router.add(middleware: Authenticator(store: store, operations: operations ?? self.operations))
        router.add(middleware: Authorizer(operations: operations ?? self.operations))
        router.add(middleware: BodyLimitMiddleware())
        router.add(middleware: RequestScopeMiddleware())
        // Every operation of openapi.yaml is served by its generated handler (see docs/architecture.md).
        do {
            try ManagerAPI(manager: self).registerHandlers(on: router, middlewares: [VerbatimHeaderFields()])
        } catch {
            logger.error("the generated routes could not be registered", metadata: ["error": "\(error)"])
        }
        return router
    }

    // MARK: - Helpers shared by the routes

    static func pageLimit(_ request: Request) throws -> Int {
        guard let text = request.uri.queryParameters["limit"] else { return 50 }
        guard let limit = Int(String(text)), (1...500).contains(limit) else { throw Problem.invalid("limit", "must be an integer from 1 to 500") }
        return limit
    }

    /// A boolean query parameter: `true`, `false` or absent (`false`); anything else is a 422.
    static func flag(_ request: Request, _ name: String) throws -> Bool {
        guard let value = request.uri.queryParameters[Substring(name)] else { return false }
        switch value {
        case "false": return false
        case "true": return true
        default: throw Problem.invalid(name, "must be true or false")
        }
    }

    static func id(_ context: KlevrRequestContext, _ name: String = "id") throws -> String {
        let value = context.parameters.get(name) ?? ""
        guard Validation.isValidID(value) else { throw Problem.badRequest("'\(value)' is not a valid id") }
        return value
    }

    static func agentKey(_ id: String) -> String { Store.agentKey(id) }
    static func runKey(_ id: String) -> String { "run:" + id }
    static func zoneKey(_ id: String) -> String { Store.zoneKey(id) }
}

extension Manager: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "Manager(\(config))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["config": config], displayStyle: .struct) }
}

/// A manager that cannot start, with the reason.
public struct ManagerError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
