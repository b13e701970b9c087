#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! # Layout
//!
//! - [`TestDb`]: a fresh database per test, through PgBouncer, dropped on success.
//! - [`PrivateCluster`]: a throw-away PostgreSQL and PgBouncer of one test's own,
//!   for tests that stop or restart them (module `cluster`).
//! - [`workspace_root`]: the repository root, where `implementations/` lives.
//! - [`corpus_dir`]: where the real-events corpus is, when it is there.
//! - [`init_logging`]: test output of `tracing` events, only when `TEST_LOG=1`.
//! - [`promtool`]: Prometheus's checker of metrics ([`metrics_problems`]),
//!   configuration and alert rules, which the suite requires.
//! - [`tls_connector`]: the TLS connector of a configuration, as the pool
//!   builds it; every connection made here uses it.
//! - [`Error`]: what can go wrong while setting a test database up.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

mod cluster;

pub use cluster::{PrivateCluster, TlsFiles};

use bigbrotr_config::{DatabaseConfig, Env, Implementation, PoolFile};
use bigbrotr_pool::SchemaFile;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use secrecy::ExposeSecret;

/// What can go wrong while setting a test database up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The implementation's configuration could not be loaded.
    #[error("could not load the configuration of implementation `{implementation}`")]
    Config {
        /// The implementation's name.
        implementation: String,
        /// Why.
        #[source]
        source: bigbrotr_config::Error,
    },
    /// A statement failed.
    #[error("{what} failed on database `{database}`")]
    Query {
        /// What was being done.
        what: &'static str,
        /// The database it was done on.
        database: String,
        /// Why.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The implementation's SQL folder could not be read, or its files are
    /// not named and numbered as the schema runner requires.
    #[error("could not read the SQL files")]
    SchemaFiles {
        /// What the reader said.
        #[source]
        source: Box<bigbrotr_pool::Error>,
    },
    /// A SQL file of the implementation failed to apply.
    #[error("applying {} failed", path.display())]
    ApplySql {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: tokio_postgres::Error,
    },
    /// No connection could be taken from the test pool.
    #[error("could not get a connection to test database `{database}`")]
    Pool {
        /// The database.
        database: String,
        /// Why.
        #[source]
        source: deadpool_postgres::PoolError,
    },
    /// The pool could not be built.
    #[error("could not build a pool for test database `{database}`")]
    BuildPool {
        /// The database.
        database: String,
        /// Why.
        #[source]
        source: deadpool_postgres::BuildError,
    },
    /// The TLS connector could not be built from the connection settings.
    #[error("could not set TLS up for a test connection")]
    Tls {
        /// Why.
        #[source]
        source: Box<bigbrotr_pool::Error>,
    },
    /// A program a [`PrivateCluster`] needs is not installed.
    #[error("{name} not found: install it (Debian: apt-get install postgresql pgbouncer openssl)")]
    MissingProgram {
        /// The program.
        name: &'static str,
    },
    /// A command run for a [`PrivateCluster`] failed.
    #[error("{what} failed ({status}): {output}")]
    Command {
        /// What the command was for.
        what: &'static str,
        /// How it ended.
        status: std::process::ExitStatus,
        /// The end of what it printed, and of the server's log.
        output: String,
    },
    /// A file or process of a [`PrivateCluster`] could not be handled.
    #[error("{what} failed")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A server of a [`PrivateCluster`] did not start or stop in time.
    #[error("{what} within {after:?}")]
    NotReady {
        /// What did not happen.
        what: &'static str,
        /// How long it was waited for.
        after: Duration,
    },
}

/// Result of the helpers here.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `promtool`, which checks metrics exposition (`check metrics`),
/// Prometheus configuration (`check config`) and alert rules (`test
/// rules`); it comes with Debian's `prometheus` package.
///
/// # Panics
///
/// When no `promtool` is on the `PATH`: the suite needs it (`.ci/run`
/// installs it), so its absence fails the test with what to install.
#[must_use]
pub fn promtool() -> std::process::Command {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("promtool"))
            .find(|path| path.is_file())
    });
    let Some(path) = found else {
        panic!(
            "promtool is not installed: install Debian's `prometheus` package \
             (apt-get install prometheus), as .ci/run does"
        );
    };
    std::process::Command::new(path)
}

/// What `promtool check metrics` says of `exposition`, the text of a
/// scrape: its problems, lint included, one a line; empty when it finds
/// none.
///
/// # Panics
///
/// When `promtool` is missing or cannot be run.
#[must_use]
pub fn metrics_problems(exposition: &str) -> String {
    use std::io::Write as _;
    use std::process::Stdio;

    let mut check = promtool()
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    let mut stdin = check.stdin.take().expect("stdin is piped");
    stdin
        .write_all(exposition.as_bytes())
        .expect("promtool reads the exposition");
    drop(stdin);
    let output = check.wait_with_output().expect("promtool ends");
    let mut said = String::from_utf8_lossy(&output.stdout).into_owned();
    said.push_str(&String::from_utf8_lossy(&output.stderr));
    if !output.status.success() && said.trim().is_empty() {
        said = format!("promtool check metrics failed ({})", output.status);
    }
    said
}

/// Installs a `tracing` subscriber printing to the test output when the
/// variable `TEST_LOG` is set (to anything but `0`); tests stay silent otherwise.
/// Safe to call many times.
pub fn init_logging() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var("TEST_LOG").is_ok_and(|v| v != "0") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("debug")),
                )
                .with_test_writer()
                .try_init();
        }
    });
}

/// The folder of the real-events corpus (`real-events.jsonl`,
/// `invalid-events.jsonl`): `shared/corpus` in a folder above the repository,
/// or the folder named by `BIGBROTR_CORPUS_DIR`. `None`, with a note on the
/// test output, when there is none: corpus tests then skip.
pub fn corpus_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("BIGBROTR_CORPUS_DIR") {
        return Some(PathBuf::from(dir));
    }
    let found = workspace_root()
        .ancestors()
        .map(|dir| dir.join("shared").join("corpus"))
        .find(|dir| dir.join("real-events.jsonl").is_file());
    if found.is_none() {
        eprintln!(
            "note: no shared/corpus folder above the repository and no BIGBROTR_CORPUS_DIR: \
             corpus test skipped"
        );
    }
    found
}

/// Prefix of every test database's name, so leftovers are easy to find.
pub const TEST_DB_PREFIX: &str = "bigbrotr_test_";

/// The repository root: the folder holding `implementations/`.
pub fn workspace_root() -> PathBuf {
    // This crate lives in `crates/test-support`.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// The connection settings the `bigbrotr` command would use for `implementation`:
/// its `config/core/pool.yaml`, expanded with the process environment and the
/// implementation's `.env`.
pub fn database_config(implementation: &str) -> Result<DatabaseConfig> {
    let config_error = |source| Error::Config {
        implementation: implementation.to_owned(),
        source,
    };
    let imp = Implementation::open(&workspace_root(), implementation).map_err(config_error)?;
    let env = Env::from_process()
        .with_dotenv(&imp.dotenv_path())
        .map_err(config_error)?;
    let file: PoolFile = imp.load("core", "pool", &env).map_err(config_error)?;
    Ok(file.database)
}

fn pg_config(db: &DatabaseConfig, database: &str) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&db.host)
        .port(db.port)
        .user(&db.user)
        .password(db.password.expose_secret())
        .dbname(database)
        .application_name("bigbrotr-tests")
        .ssl_mode(bigbrotr_pool::driver_ssl_mode(db.sslmode))
        .connect_timeout(Duration::from_secs(10));
    config
}

/// The TLS connector of `db`, as the pool builds it.
pub fn tls_connector(db: &DatabaseConfig) -> Result<bigbrotr_pool::TlsConnector> {
    bigbrotr_pool::tls_connector(db).map_err(|source| Error::Tls {
        source: Box::new(source),
    })
}

/// Connects with the TLS of `db`, retrying for a while when the server
/// refuses the connection: the development PgBouncer is restarted by its
/// watchdog when it exits, and a test starting during those moments waits
/// instead of failing. The connection is driven by a task of its own.
async fn connect_patiently(
    db: &DatabaseConfig,
    database: &str,
    what: &'static str,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>)> {
    const ATTEMPTS: u32 = 40;
    let config = pg_config(db, database);
    let tls = tls_connector(db)?;
    let mut attempt = 1;
    loop {
        match config.connect(tls.clone()).await {
            Err(error) if attempt < ATTEMPTS && refused(&error) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Ok((client, connection)) => {
                let driver = tokio::spawn(async move {
                    let _ = connection.await;
                });
                return Ok((client, driver));
            }
            Err(source) => {
                return Err(Error::Query {
                    what,
                    database: database.to_owned(),
                    source,
                })
            }
        }
    }
}

/// Whether `error` is a refused TCP connection (nothing listening).
fn refused(error: &tokio_postgres::Error) -> bool {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<std::io::Error>())
        .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
}

/// Runs `sql` with the simple protocol on a one-off connection to `database`.
async fn run_simple(
    db: &DatabaseConfig,
    database: &str,
    what: &'static str,
    sql: &str,
) -> Result<()> {
    let query_error = |source| Error::Query {
        what,
        database: database.to_owned(),
        source,
    };
    let (client, driver) = connect_patiently(db, database, what).await?;
    let result = client.batch_execute(sql).await.map_err(query_error);
    drop(client);
    let _ = driver.await;
    result
}

fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{TEST_DB_PREFIX}{}_{}_{:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        fastrand::u32(..)
    )
}

/// A fresh database for one test, reached through PgBouncer, dropped when the
/// test passes.
pub struct TestDb {
    name: String,
    implementation: String,
    config: DatabaseConfig,
    pool: Pool,
}

impl TestDb {
    /// Creates a fresh database with the SQL of `implementation` applied (its
    /// `sql/NNN_*.sql` files in order, when it has some) and a pool of up to 8
    /// connections on it.
    pub async fn new(implementation: &str) -> Result<Self> {
        Self::with_pool_size(implementation, 8).await
    }

    /// Like [`TestDb::new`], with a pool of up to `max_size` connections.
    pub async fn with_pool_size(implementation: &str, max_size: usize) -> Result<Self> {
        let db = Self::empty(implementation, max_size).await?;
        db.apply_sql().await?;
        Ok(db)
    }

    /// A fresh database with nothing in it (none of `implementation`'s SQL
    /// applied: for tests of `db init` and the schema runner) and a pool of
    /// up to `max_size` connections on it. `implementation` gives the server
    /// and the credentials.
    pub async fn empty(implementation: &str, max_size: usize) -> Result<Self> {
        init_logging();
        let config = database_config(implementation)?;
        let name = unique_name();
        // CREATE DATABASE cannot run in a transaction block; a simple query on its
        // own is autocommit, which PgBouncer's transaction mode passes through.
        run_simple(
            &config,
            &config.database,
            "CREATE DATABASE",
            &format!("CREATE DATABASE \"{name}\""),
        )
        .await?;
        let pool = build_pool(&config, &name, max_size)?;
        let db = Self {
            name,
            implementation: implementation.to_owned(),
            config,
            pool,
        };
        Ok(db)
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The connection settings of the database (through PgBouncer).
    pub fn config(&self) -> &DatabaseConfig {
        &self.config
    }

    /// The connection settings of this database: [`TestDb::config`] with the
    /// database name set to this one.
    pub fn database_config(&self) -> DatabaseConfig {
        DatabaseConfig {
            database: self.name.clone(),
            ..self.config.clone()
        }
    }

    /// A `tokio_postgres` configuration for this database; connect it with
    /// [`tls_connector`] of [`TestDb::config`].
    pub fn pg_config(&self) -> tokio_postgres::Config {
        pg_config(&self.config, &self.name)
    }

    /// A connected [`bigbrotr_pool::ConnectionPool`] of up to `max_size`
    /// connections on the database, with short limits so that a failing
    /// test fails fast: 20 s to get a connection, 30 s a statement, three
    /// attempts 20 to 200 ms apart.
    pub async fn connection_pool(
        &self,
        max_size: u32,
    ) -> bigbrotr_pool::Result<bigbrotr_pool::ConnectionPool> {
        let pool = bigbrotr_pool::ConnectionPool::new(
            &self.database_config(),
            &bigbrotr_config::PoolConfig {
                min_size: 1,
                max_size,
                timeout: Duration::from_secs(20),
                command_timeout: Duration::from_secs(30),
            },
            &bigbrotr_config::RetryConfig {
                max_attempts: 3,
                initial_delay: Duration::from_millis(20),
                max_delay: Duration::from_millis(200),
                exponential_base: 2.0,
            },
        )?;
        pool.connect().await?;
        Ok(pool)
    }

    /// The pool on the database.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// A connection from the pool.
    pub async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|source| Error::Pool {
            database: self.name.clone(),
            source,
        })
    }

    /// The implementation's SQL files, in the order they are applied.
    pub fn sql_files(&self) -> Result<Vec<PathBuf>> {
        sql_files(&implementation_sql_dir(&self.implementation))
    }

    async fn apply_sql(&self) -> Result<()> {
        let client = self.client().await?;
        apply_sql(&client, &implementation_sql_files(&self.implementation)?).await
    }
}

/// The SQL files of `implementation`, in the order they are applied.
pub(crate) fn implementation_sql_files(implementation: &str) -> Result<Vec<SchemaFile>> {
    schema_files(&implementation_sql_dir(implementation))
}

/// The SQL folder of `implementation`.
fn implementation_sql_dir(implementation: &str) -> PathBuf {
    workspace_root()
        .join("implementations")
        .join(implementation)
        .join("sql")
}

/// Applies `files` in order on `client`, each in one transaction: a file
/// applies whole or not at all.
pub(crate) async fn apply_sql(client: &tokio_postgres::Client, files: &[SchemaFile]) -> Result<()> {
    for file in files {
        client
            .batch_execute(&format!("BEGIN;\n{}\n;COMMIT;", file.sql))
            .await
            .map_err(|source| Error::ApplySql {
                path: file.path.clone(),
                source,
            })?;
    }
    Ok(())
}

/// Every `NNN_name.sql` file of `dir`, in the order they are applied; none
/// when `dir` is missing.
pub fn sql_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let files = schema_files(dir)?;
    Ok(files.into_iter().map(|file| file.path).collect())
}

/// The `NNN_name.sql` files of `dir` as the schema runner reads them (the
/// same listing, order, checks and bytes); none when `dir` is missing.
fn schema_files(dir: &Path) -> Result<Vec<SchemaFile>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    bigbrotr_pool::read_schema_dir(dir).map_err(|source| Error::SchemaFiles {
        source: Box::new(source),
    })
}

fn build_pool(config: &DatabaseConfig, database: &str, max_size: usize) -> Result<Pool> {
    let manager = Manager::from_config(
        pg_config(config, database),
        tls_connector(config)?,
        ManagerConfig {
            // Behind PgBouncer a cheap recycle is right: the server side is pooled there.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(30)))
        .create_timeout(Some(Duration::from_secs(10)))
        .build()
        .map_err(|source| Error::BuildPool {
            database: database.to_owned(),
            source,
        })
}

impl Drop for TestDb {
    fn drop(&mut self) {
        self.pool.close();
        if std::thread::panicking() {
            eprintln!("test failed: kept database `{}` for inspection", self.name);
            return;
        }
        let config = self.config.clone();
        let name = self.name.clone();
        // Drop runs outside any async context we could rely on: a thread with its
        // own runtime does the async work and is joined, so the database is gone
        // when the test returns.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime
                .block_on(run_simple(
                    &config,
                    &config.database,
                    "DROP DATABASE",
                    &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                ))
                .ok()
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop test database `{}`", self.name);
        }
    }
}

/// Whether a database of that name exists, asked through PgBouncer.
pub async fn database_exists(config: &DatabaseConfig, name: &str) -> Result<bool> {
    let query_error = |source| Error::Query {
        what: "SELECT FROM pg_database",
        database: config.database.clone(),
        source,
    };
    let (client, driver) =
        connect_patiently(config, &config.database, "SELECT FROM pg_database").await?;
    let rows = client
        .query_typed(
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[(&name, tokio_postgres::types::Type::TEXT)],
        )
        .await
        .map_err(query_error)?;
    drop(client);
    let _ = driver.await;
    Ok(!rows.is_empty())
}
