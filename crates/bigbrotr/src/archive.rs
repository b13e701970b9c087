//! Opening the archive of an implementation: its pool and [`Brotr`] from
//! `config/core/pool.yaml` and `config/core/brotr.yaml`; and the session
//! limits `db init` stores on the server for the archive's role.

use std::time::Duration;

use anyhow::Context as _;
use bigbrotr_brotr::Brotr;
use bigbrotr_config::{BrotrFile, Env, Implementation, PoolFile, RoleConfig};
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
