import KlevrCore
import SQLKit

/// The numbered schema migrations. A migration is never edited after it has landed; changes are new
/// migrations. Types are the common subset of SQLite and PostgreSQL: TEXT, BIGINT, INTEGER; times are
/// epoch milliseconds; JSON is TEXT.
enum Migrations {
    static let all: [(version: Int, statements: [String])] = [
        (1, [
            """
            CREATE TABLE users (
                id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL,
                role TEXT NOT NULL, created_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE sessions (
                token_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                csrf TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE api_tokens (
                id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE, name TEXT NOT NULL,
                token_hash TEXT NOT NULL UNIQUE, created_at BIGINT NOT NULL, last_used_at BIGINT)
            """,
            """
            CREATE TABLE zones (
                id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL, created_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE enroll_keys (
                id TEXT PRIMARY KEY, zone_id TEXT NOT NULL REFERENCES zones(id) ON DELETE CASCADE,
                key_hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL, created_at BIGINT NOT NULL,
                expires_at BIGINT, revoked_at BIGINT)
            """,
            """
            CREATE TABLE agents (
                id TEXT PRIMARY KEY, zone_id TEXT NOT NULL REFERENCES zones(id) ON DELETE CASCADE,
                hostname TEXT NOT NULL, os TEXT NOT NULL, version TEXT NOT NULL, addresses TEXT NOT NULL,
                public_key TEXT NOT NULL, credential_hash TEXT NOT NULL UNIQUE, enrolled_at BIGINT NOT NULL,
                last_seen_at BIGINT NOT NULL, retired_at BIGINT)
            """,
            "CREATE INDEX agents_zone ON agents(zone_id)",
            """
            CREATE TABLE tasks (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, zone_id TEXT NOT NULL REFERENCES zones(id) ON DELETE CASCADE,
                target TEXT NOT NULL, steps TEXT NOT NULL, params TEXT NOT NULL, timeout_seconds BIGINT NOT NULL,
                created_at BIGINT NOT NULL, created_by TEXT NOT NULL, canceled_at BIGINT)
            """,
            "CREATE INDEX tasks_created ON tasks(created_at)",
            """
            CREATE TABLE runs (
                id TEXT PRIMARY KEY, task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
                agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE, zone_id TEXT NOT NULL,
                status TEXT NOT NULL, reason TEXT, exit_code BIGINT, result TEXT,
                cancel_requested INTEGER NOT NULL DEFAULT 0, cancel_sent_at BIGINT,
                created_at BIGINT NOT NULL, dispatched_at BIGINT, started_at BIGINT, finished_at BIGINT)
            """,
            "CREATE INDEX runs_agent_status ON runs(agent_id, status)",
            "CREATE INDEX runs_task ON runs(task_id)",
            "CREATE INDEX runs_created ON runs(created_at)",
            """
            CREATE TABLE run_logs (
                run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, seq BIGINT NOT NULL,
                stream TEXT NOT NULL, data TEXT NOT NULL, at BIGINT NOT NULL, PRIMARY KEY (run_id, seq))
            """,
        ]),
        (2, [
            """
            CREATE TABLE zone_leases (
                zone_id TEXT PRIMARY KEY REFERENCES zones(id) ON DELETE CASCADE, holder TEXT NOT NULL,
                epoch BIGINT NOT NULL, expires_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE events (
                id TEXT PRIMARY KEY, kind TEXT NOT NULL, zone_id TEXT NOT NULL, agent_id TEXT, epoch BIGINT,
                detail TEXT NOT NULL, at BIGINT NOT NULL)
            """,
            "CREATE INDEX events_zone_at ON events(zone_id, at)",
        ]),
        (3, [
            "ALTER TABLE agents ADD COLUMN peer_address TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE agents ADD COLUMN manager_route INTEGER NOT NULL DEFAULT 0",
        ]),
        (4, [
            "ALTER TABLE agents ADD COLUMN priority BIGINT NOT NULL DEFAULT 0",
        ]),
        (5, [
            // Zone channel v2: the agent's X25519 key (parameters are sealed to it), the time of its last
            // enrollment statement (older ones are refused: no replay), its measured clock skew.
            "ALTER TABLE agents ADD COLUMN seal_key TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE agents ADD COLUMN enroll_proof_at BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE agents ADD COLUMN clock_skew_ms BIGINT",
            "CREATE INDEX runs_zone_status ON runs(zone_id, status)",
        ]),
        (6, [
            // The typed event log: a monotonic id (handed out in commit order), the actor, zone and
            // subject of every change. The zone events of migration 2 move into it.
            """
            CREATE TABLE event_log (
                id BIGINT PRIMARY KEY, at BIGINT NOT NULL, kind TEXT NOT NULL, actor_kind TEXT NOT NULL, actor_id TEXT NOT NULL,
                actor_name TEXT NOT NULL, client_address TEXT, zone_id TEXT NOT NULL, subject TEXT NOT NULL, detail TEXT NOT NULL)
            """,
            "CREATE INDEX event_log_zone ON event_log(zone_id, id)",
            "CREATE INDEX event_log_subject ON event_log(subject, id)",
            "CREATE INDEX event_log_kind ON event_log(kind, id)",
            "CREATE INDEX event_log_actor ON event_log(actor_id, id)",
            """
            sqlite:INSERT INTO event_log (id, at, kind, actor_kind, actor_id, actor_name, client_address, zone_id, subject, detail)
            SELECT ROW_NUMBER() OVER (ORDER BY at, id), at,
                CASE kind WHEN 'primary_elected' THEN 'primary.elected' WHEN 'primary_retired' THEN 'primary.retired'
                    WHEN 'agent_online' THEN 'agent.online' WHEN 'agent_offline' THEN 'agent.offline'
                    ELSE 'agent.relay_forgery' END,
                'system', '', 'system', NULL, zone_id, COALESCE(agent_id, zone_id),
                CASE WHEN epoch IS NULL THEN json_object('note', detail) ELSE json_object('note', detail, 'epoch', CAST(epoch AS TEXT)) END
            FROM events WHERE kind IN ('primary_elected', 'primary_retired', 'agent_online', 'agent_offline', 'relay_forgery')
            """,
            """
            postgres:INSERT INTO event_log (id, at, kind, actor_kind, actor_id, actor_name, client_address, zone_id, subject, detail)
            SELECT ROW_NUMBER() OVER (ORDER BY at, id), at,
                CASE kind WHEN 'primary_elected' THEN 'primary.elected' WHEN 'primary_retired' THEN 'primary.retired'
                    WHEN 'agent_online' THEN 'agent.online' WHEN 'agent_offline' THEN 'agent.offline'
                    ELSE 'agent.relay_forgery' END,
                'system', '', 'system', NULL, zone_id, COALESCE(agent_id, zone_id),
                CASE WHEN epoch IS NULL THEN json_build_object('note', detail)::text
                    ELSE json_build_object('note', detail, 'epoch', CAST(epoch AS TEXT))::text END
            FROM events WHERE kind IN ('primary_elected', 'primary_retired', 'agent_online', 'agent_offline', 'relay_forgery')
            """,
            "DROP TABLE events",
            // A run's first dispatch time is kept; the last delivery (redelivery, release) has its own column.
            "ALTER TABLE runs ADD COLUMN delivered_at BIGINT",
            "UPDATE runs SET delivered_at = dispatched_at",
            // Retiring an agent first stops its runs; its credential dies when they stopped (or after a grace).
            "ALTER TABLE agents ADD COLUMN retire_requested_at BIGINT",
        ]),
        (7, [
            // Users and tokens: a disabled user keeps their name and what they created but can no longer
            // authenticate; a generated first-admin password must be changed before anything else; tokens
            // may expire.
            "ALTER TABLE users ADD COLUMN disabled_at BIGINT",
            "ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE users ADD COLUMN password_changed_at BIGINT",
            "ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT",
            "CREATE INDEX api_tokens_user ON api_tokens(user_id)",
            "CREATE INDEX sessions_user ON sessions(user_id)",
        ]),
        (8, [
            // Schedules and deadlines: a task may run at a later time (its runs wait `scheduled` until
            // `due_at`) and must start within a span (`deliver_by`: past it, a run not started ends
            // `expired` and never runs).
            "ALTER TABLE tasks ADD COLUMN run_at BIGINT",
            "ALTER TABLE tasks ADD COLUMN deliver_within_seconds BIGINT",
            "ALTER TABLE runs ADD COLUMN due_at BIGINT",
            "ALTER TABLE runs ADD COLUMN deliver_by BIGINT",
            "CREATE INDEX runs_due ON runs(status, due_at)",
            "CREATE INDEX runs_deliver_by ON runs(deliver_by)",
        ]),
        (9, [
            // Recurring tasks: a cron expression in an IANA zone with its bounds and policies, and where
            // the schedule stands (the cursor moves with the runs it creates, in one transaction).
            "ALTER TABLE tasks ADD COLUMN cron TEXT",
            "ALTER TABLE tasks ADD COLUMN cron_time_zone TEXT",
            "ALTER TABLE tasks ADD COLUMN until_at BIGINT",
            "ALTER TABLE tasks ADD COLUMN max_occurrences BIGINT",
            "ALTER TABLE tasks ADD COLUMN overlap TEXT",
            "ALTER TABLE tasks ADD COLUMN catch_up TEXT",
            "ALTER TABLE tasks ADD COLUMN schedule_cursor BIGINT",
            "ALTER TABLE tasks ADD COLUMN fired_count BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE tasks ADD COLUMN next_fire_at BIGINT",
            "ALTER TABLE tasks ADD COLUMN paused_at BIGINT",
            "CREATE INDEX tasks_next_fire ON tasks(next_fire_at)",
            "ALTER TABLE runs ADD COLUMN occurrence BIGINT",
        ]),
        (10, [
            // Labels and rollout: an agent's labels as they count (`labels`), the ones it reported
            // (`--labels`) and who set them through the API (NULL while the reported ones count); a task's
            // rollout limits as written (`2`, `10%`). A selector task keeps its selector in its target JSON;
            // its runs carry each agent's zone (runs.zone_id), the task its owning zone.
            "ALTER TABLE agents ADD COLUMN labels TEXT NOT NULL DEFAULT '{}'",
            "ALTER TABLE agents ADD COLUMN reported_labels TEXT NOT NULL DEFAULT '{}'",
            "ALTER TABLE agents ADD COLUMN labels_set_by TEXT",
            "ALTER TABLE tasks ADD COLUMN max_concurrency TEXT",
            "ALTER TABLE tasks ADD COLUMN max_errors TEXT",
            // The rollout counts a task's runs by status at every dispatch.
            "CREATE INDEX runs_task_status ON runs(task_id, status)",
        ]),
        (11, [
            // Credentials: a value sealed under the master key (base64 of SecretBox's format, bound to the
            // credential's id), global (scope '') or of one zone (scope = the zone's id); a name is unique
            // in its scope. Tasks name the credentials their runs may use (a JSON array of names).
            """
            CREATE TABLE credentials (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, scope TEXT NOT NULL, description TEXT NOT NULL, sealed TEXT NOT NULL,
                created_at BIGINT NOT NULL, created_by TEXT NOT NULL, updated_at BIGINT NOT NULL, UNIQUE (scope, name))
            """,
            "ALTER TABLE tasks ADD COLUMN credentials TEXT NOT NULL DEFAULT '[]'",
        ]),
        (12, [
            // Webhooks: the subscriptions (the signing secret sealed under the master key; `start_event_id`:
            // only later events are delivered; `task_id`: a task's callback URL, not listed with the
            // others), the stored delivery queue with every attempt, and how far the event log was followed.
            """
            CREATE TABLE webhooks (
                id TEXT PRIMARY KEY, url TEXT NOT NULL, description TEXT NOT NULL, kinds TEXT NOT NULL, zone_id TEXT,
                enabled INTEGER NOT NULL, secret_sealed TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
                created_by TEXT NOT NULL, start_event_id BIGINT NOT NULL, task_id TEXT)
            """,
            "CREATE INDEX webhooks_task ON webhooks(task_id)",
            """
            CREATE TABLE webhook_deliveries (
                id TEXT PRIMARY KEY, webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE, event_id BIGINT NOT NULL,
                event_kind TEXT NOT NULL, message_id TEXT NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL,
                attempts BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL, next_attempt_at BIGINT, first_attempt_at BIGINT,
                last_attempt_at BIGINT, redelivery_of TEXT)
            """,
            "CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at)",
            "CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries(webhook_id, created_at)",
            """
            CREATE TABLE webhook_attempts (
                delivery_id TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE, attempt BIGINT NOT NULL,
                at BIGINT NOT NULL, status_code BIGINT, duration_ms BIGINT NOT NULL, error TEXT, PRIMARY KEY (delivery_id, attempt))
            """,
            "CREATE TABLE webhook_cursor (name TEXT PRIMARY KEY, event_id BIGINT NOT NULL)",
            "INSERT INTO webhook_cursor (name, event_id) SELECT 'events', COALESCE(MAX(id), 0) FROM event_log",
        ]),
        (14, [
            // Recover steps: run when a step fails (JSON, as `steps`).
            "ALTER TABLE tasks ADD COLUMN recover TEXT NOT NULL DEFAULT '[]'",
        ]),
        (15, [
            // Retention (Store+Retention.swift): old events and finished webhook deliveries are found by time.
            "CREATE INDEX event_log_at ON event_log(at)",
            "CREATE INDEX webhook_deliveries_created ON webhook_deliveries(created_at)",
        ]),
    ]

    /// Applies the migrations this database has not seen yet, each in its own transaction.
    /// A statement that starts with `sqlite:` or `postgres:` runs on that engine only.
    static func statement(_ text: String, postgres: Bool) -> String? {
        if text.hasPrefix("sqlite:") { return postgres ? nil : String(text.dropFirst("sqlite:".count)) }
        if text.hasPrefix("postgres:") { return postgres ? String(text.dropFirst("postgres:".count)) : nil }
        return text
    }

    ///
    /// Several managers may start at once on one PostgreSQL database: each migration's transaction first
    /// takes a transaction-scoped advisory lock (released by its commit or rollback, so a crashed manager
    /// cannot leave it held), then checks again whether the migration was applied meanwhile. SQLite is
    /// used by one process, whose connection is already serialized.
    static func migrate(_ database: Database) async throws {
        let isPostgres = database.isPostgres
        // The advisory lock key of migrations: any constant that no other lock of Klevr uses ("klevr_mg").
        let migrationLockKey: Int64 = 0x6B6C_6576_725F_6D67
        for migration in all {
            try await database.transaction { db in
                if isPostgres {
                    try await db.raw("SELECT pg_advisory_xact_lock(\(bind: migrationLockKey))").run()
                }
                try await db.raw(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)"
                ).run()
                let applied = try await db.raw(
                    "SELECT version FROM schema_migrations WHERE version = \(bind: Int64(migration.version))"
                ).first()
                guard applied == nil else { return }
                for text in migration.statements {
                    guard let statement = statement(text, postgres: isPostgres) else { continue }
                    try await db.raw(SQLQueryString(statement)).run()
                }
                try await db.raw(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (\(bind: Int64(migration.version)), \(bind: Clock.nowMillis()))"
                ).run()
            }
        }
    }
}
