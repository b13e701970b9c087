//! Fresh databases for the measurements, created and dropped through the
//! same PgBouncer the archive writes through.

use std::time::Duration;

use anyhow::Context as _;
use bigbrotr_config::{BrotrConfig, BrotrFile, DatabaseConfig, Env, Implementation, PoolFile};
use bigbrotr_pool::ConnectionPool;
use secrecy::ExposeSecret as _;

/// Name prefix of every database the benchmark creates, so leftovers are
/// easy to find.
const PREFIX: &str = "bigbrotr_bench_";

/// The database server the implementation's configuration points at.
#[derive(Debug, Clone)]
pub(crate) struct Server {
    pool_file: PoolFile,
    brotr: BrotrConfig,
    implementation: Implementation,
}

impl Server {
    /// The server, pool and archive settings of `implementation`, read as
    /// the `bigbrotr` command reads them.
    pub(crate) fn of(implementation: Implementation) -> anyhow::Result<Self> {
        let env = Env::from_process()
            .with_dotenv(&implementation.dotenv_path())
            .context("reading the implementation's .env")?;
        let pool_file: PoolFile = implementation
            .load("core", "pool", &env)
            .context("loading config/core/pool.yaml")?;
        let brotr_file: BrotrFile = implementation
            .load("core", "brotr", &env)
            .context("loading config/core/brotr.yaml")?;
        Ok(Self {
            pool_file,
            brotr: brotr_file.brotr,
            implementation,
        })
    }

    /// The implementation.
    pub(crate) fn implementation(&self) -> &Implementation {
        &self.implementation
    }

    /// The implementation's `brotr` section.
    pub(crate) fn brotr_config(&self) -> &BrotrConfig {
        &self.brotr
    }

    /// The host and port connected to.
    pub(crate) fn address(&self) -> String {
        format!(
            "{}:{}",
            self.pool_file.database.host, self.pool_file.database.port
        )
    }

    /// Creates an empty database named after `label`.
    pub(crate) async fn create(&self, label: &str) -> anyhow::Result<BenchDb> {
        let name = format!("{PREFIX}{}_{label}", std::process::id());
        let admin = &self.pool_file.database;
        // A leftover of an interrupted run with the same process id.
        simple(
            admin,
            &admin.database,
            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        )
        .await?;
        // CREATE DATABASE cannot run in a transaction block; a simple query
        // on its own is autocommit, which PgBouncer's transaction mode
        // passes through.
        simple(
            admin,
            &admin.database,
            &format!("CREATE DATABASE \"{name}\""),
        )
        .await
        .with_context(|| format!("creating database `{name}`"))?;
        Ok(BenchDb {
            config: DatabaseConfig {
                database: name,
                ..admin.clone()
            },
            admin: admin.clone(),
        })
    }

    /// A pool on `db` as the implementation configures it.
    pub(crate) async fn pool(&self, db: &BenchDb) -> anyhow::Result<ConnectionPool> {
        let pool = ConnectionPool::new(&db.config, &self.pool_file.pool, &self.pool_file.retry)
            .context("setting up the connection pool")?;
        pool.connect()
            .await
            .with_context(|| format!("connecting to database `{}`", db.name()))?;
        Ok(pool)
    }
}

/// A database created for one measurement.
#[derive(Debug)]
pub(crate) struct BenchDb {
    config: DatabaseConfig,
    admin: DatabaseConfig,
}

impl BenchDb {
    /// Its name.
    pub(crate) fn name(&self) -> &str {
        &self.config.database
    }

    /// Drops it, unless `keep`.
    pub(crate) async fn finish(self, keep: bool) -> anyhow::Result<()> {
        if keep {
            println!("  kept database `{}`", self.name());
            return Ok(());
        }
        simple(
            &self.admin,
            &self.admin.database,
            &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name()),
        )
        .await
        .with_context(|| format!("dropping database `{}`", self.name()))
    }
}

/// Rows of `table`.
pub(crate) async fn count(pool: &ConnectionPool, table: &str) -> anyhow::Result<u64> {
    let row = pool
        .fetch_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .with_context(|| format!("counting the rows of {table}"))?;
    let rows: i64 = row.get(0);
    u64::try_from(rows).context("a negative count")
}

/// Runs `sql` with the simple protocol on a one-off connection to `database`.
async fn simple(config: &DatabaseConfig, database: &str, sql: &str) -> anyhow::Result<()> {
    let tls = bigbrotr_pool::tls_connector(config).context("setting TLS up")?;
    let (client, connection) = tokio_postgres::Config::new()
        .host(&config.host)
        .port(config.port)
        .user(&config.user)
        .password(config.password.expose_secret())
        .dbname(database)
        .application_name("bigbrotr-bench")
        .ssl_mode(bigbrotr_pool::driver_ssl_mode(config.sslmode))
        .connect_timeout(Duration::from_secs(10))
        .connect(tls)
        .await
        .with_context(|| {
            format!(
                "connecting to database `{database}` at {}:{}",
                config.host, config.port
            )
        })?;
    let driver = tokio::spawn(connection);
    let result = client.batch_execute(sql).await;
    drop(client);
    let _ = driver.await;
    result.with_context(|| format!("running `{sql}`"))
}
