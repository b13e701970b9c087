//! Opening the archive of an implementation: its pool and [`Brotr`] from
//! `config/core/pool.yaml` and `config/core/brotr.yaml`; and the session
//! limits `db init` stores on the server for the archive's role.

use std::time::Duration;

use anyhow::Context as _;
use bigbrotr_brotr::Brotr;
use bigbrotr_config::{BrotrFile, Env, Implementation, PoolFile, RoleConfig, RolesConfig};
use bigbrotr_pool::ConnectionPool;

/// The pool (connected) and the archive over it.
pub(crate) async fn open_archive(
    implementation: &Implementation,
    env: &Env,
) -> anyhow::Result<Brotr> {
    open_archive_as(implementation, env, bigbrotr_pool::APPLICATION_NAME).await
}

/// Like `open_archive`, with the pool's connections reporting
/// `application_name` (PgBouncer's `SHOW CLIENTS`, the server's
/// `pg_stat_activity`).
pub async fn open_archive_as(
    implementation: &Implementation,
    env: &Env,
    application_name: &str,
) -> anyhow::Result<Brotr> {
    let pool_file: PoolFile = implementation
        .load("core", "pool", env)
        .context("loading config/core/pool.yaml")?;
    let brotr_file: BrotrFile = implementation
        .load("core", "brotr", env)
        .context("loading config/core/brotr.yaml")?;
    let pool = ConnectionPool::with_application_name(
        &pool_file.database,
        &pool_file.pool,
        &pool_file.retry,
        application_name,
    )
    .context("setting up the connection pool")?;
    pool.connect().await.with_context(|| {
        format!(
            "connecting to database `{}` at {}:{}",
            pool_file.database.database, pool_file.database.host, pool_file.database.port
        )
    })?;
    Brotr::new(pool, brotr_file.brotr).context("setting up the archive")
}

/// Stores the limits of `role` on the server as session defaults of the
/// current user in the current database (`ALTER ROLE … IN DATABASE … SET`).
/// PgBouncer drops such settings from a client's startup packet, so they
/// must live on the server; sessions opened afterwards get them.
pub(crate) async fn store_role_limits(
    pool: &ConnectionPool,
    role: &RoleConfig,
) -> anyhow::Result<()> {
    let milliseconds = |limit: Duration| limit.as_millis();
    // The database name is quoted by the server (`%I`); the values are
    // integers of ours.
    let script = format!(
        "DO $$ BEGIN \
           EXECUTE format('ALTER ROLE CURRENT_USER IN DATABASE %I SET statement_timeout = {}', current_database()); \
           EXECUTE format('ALTER ROLE CURRENT_USER IN DATABASE %I SET idle_in_transaction_session_timeout = {}', current_database()); \
         END $$",
        milliseconds(role.statement_timeout),
        milliseconds(role.idle_in_transaction_session_timeout),
    );
    pool.batch_execute(&script)
        .await
        .context("storing the session limits of the database user (ALTER ROLE … SET)")?;
    tracing::info!(
        target: "bigbrotr::db",
        statement_timeout_ms = milliseconds(role.statement_timeout),
        idle_in_transaction_session_timeout_ms =
            milliseconds(role.idle_in_transaction_session_timeout),
        "session limits stored for the database user"
    );
    Ok(())
}

/// Creates the roles of `roles` that do not exist yet and grants them what
/// they may do in the current database (see [`RolesConfig`]); sets each
/// password found in `env`, as a SCRAM-SHA-256 verifier made here (the
/// password itself never reaches the server), and gives the writer the
/// session limits of `limits`. Runs as the owner of the schema, which must
/// be allowed to create roles. Returns the roles made or updated.
pub(crate) async fn store_roles(
    pool: &ConnectionPool,
    roles: &RolesConfig,
    limits: &RoleConfig,
    env: &Env,
) -> anyhow::Result<Vec<String>> {
    let mut stored = Vec::new();
    for (name, password_env, grants) in [
        (
            &roles.reader,
            &roles.reader_password_env,
            reader_grants(&roles.reader),
        ),
        (
            &roles.writer,
            &roles.writer_password_env,
            writer_grants(&roles.writer, limits),
        ),
    ] {
        if name.is_empty() {
            continue;
        }
        // Role names are checked to be lower-case SQL names (RolesConfig),
        // so they are safe in the script; the database name is quoted by
        // the server (`%I`).
        let mut script = format!(
            "DO $$ BEGIN \
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN \
                 CREATE ROLE \"{name}\" LOGIN; \
               END IF; \
               EXECUTE format('GRANT CONNECT ON DATABASE %I TO \"{name}\"', current_database()); \
             END $$; \
             GRANT USAGE ON SCHEMA public TO \"{name}\"; {grants}"
        );
        if let Some(password) = env
            .get(password_env)
            .filter(|password| !password.is_empty())
        {
            let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
            script.push_str(&format!(" ALTER ROLE \"{name}\" PASSWORD '{verifier}';"));
        }
        pool.batch_execute(&script)
            .await
            .with_context(|| format!("creating or updating the role `{name}`"))?;
        tracing::info!(target: "bigbrotr::db", role = %name, "role stored");
        stored.push(name.clone());
    }
    Ok(stored)
}

/// What the reader may do besides connecting: read every table and view,
/// today's and those made later by the owner, in read-only sessions.
fn reader_grants(name: &str) -> String {
    format!(
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{name}\"; \
         ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO \"{name}\"; \
         DO $$ BEGIN \
           EXECUTE format('ALTER ROLE \"{name}\" IN DATABASE %I SET default_transaction_read_only = on', current_database()); \
         END $$;"
    )
}

/// What the writer may do besides connecting: read and write rows, use
/// sequences and call routines (today's and later ones), with the session
/// limits of `limits`; not create or change objects.
fn writer_grants(name: &str, limits: &RoleConfig) -> String {
    format!(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO \"{name}\"; \
         GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO \"{name}\"; \
         GRANT EXECUTE ON ALL ROUTINES IN SCHEMA public TO \"{name}\"; \
         ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO \"{name}\"; \
         ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO \"{name}\"; \
         ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT EXECUTE ON ROUTINES TO \"{name}\"; \
         DO $$ BEGIN \
           EXECUTE format('ALTER ROLE \"{name}\" IN DATABASE %I SET statement_timeout = {}', current_database()); \
           EXECUTE format('ALTER ROLE \"{name}\" IN DATABASE %I SET idle_in_transaction_session_timeout = {}', current_database()); \
         END $$;",
        limits.statement_timeout.as_millis(),
        limits.idle_in_transaction_session_timeout.as_millis(),
    )
}
