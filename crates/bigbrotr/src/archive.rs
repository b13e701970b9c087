//! Opening the archive of an implementation: its pool and [`Brotr`] from
//! `config/core/pool.yaml` and `config/core/brotr.yaml`.

use anyhow::Context as _;
use bigbrotr_brotr::Brotr;
use bigbrotr_config::{BrotrFile, Env, Implementation, PoolFile};
use bigbrotr_pool::ConnectionPool;

/// The pool (connected) and the archive over it.
pub async fn open(implementation: &Implementation, env: &Env) -> anyhow::Result<Brotr> {
    open_as(implementation, env, bigbrotr_pool::APPLICATION_NAME).await
}

/// Like [`open`], with the pool's connections reporting `application_name`
/// (PgBouncer's `SHOW CLIENTS`, the server's `pg_stat_activity`).
pub async fn open_as(
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
