#![doc = include_str!("../README.md")]
//!
//! # Layout
//!
//! What the examples share:
//!
//! - [`implementation`]: the `bigbrotr` implementation and the environment
//!   its configuration is read with (the process's, then its `.env`).
//! - [`open_archive`]: `config/core/pool.yaml` and `brotr.yaml` to a
//!   connected [`Brotr`], with the schema created or upgraded as
//!   `bigbrotr db init` does.
//! - [`InProcessRelay`]: a relay on `127.0.0.1`, holding the events given.
//! - [`testing`]: what the test at the end of each example starts from.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use bigbrotr_brotr::Brotr;
use bigbrotr_config::{Env, Implementation};
use nostr::Event;
use nostr_relay_builder::prelude::{
    MemoryDatabase, MemoryDatabaseOptions, NostrDatabase as _, RateLimit, RelayBuilder,
};
use nostr_relay_builder::LocalRelay;

/// The implementation the examples run on.
pub const IMPLEMENTATION: &str = "bigbrotr";

/// How long closing the pool may wait for calls still running.
pub const POOL_CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The folder holding `implementations/`: `BIGBROTR_ROOT` when set, else
/// this repository (whatever the current folder is, so that the examples
/// and their tests run from anywhere).
#[must_use]
pub fn repository_root(env: &Env) -> PathBuf {
    match env.get(bigbrotr_config::ROOT_VARIABLE) {
        Some(root) if !root.is_empty() => PathBuf::from(root),
        // This package is the folder `examples/` of the repository.
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
    }
}

/// The implementation [`IMPLEMENTATION`] and the variables its files are
/// read with: `env` (the process's, in `main`), then the implementation's
/// `.env` for the variables `env` does not set; as `bigbrotr` reads them.
pub fn implementation(env: Env) -> anyhow::Result<(Implementation, Env)> {
    let root = repository_root(&env);
    let implementation = Implementation::open(&root, IMPLEMENTATION)
        .with_context(|| format!("opening implementation `{IMPLEMENTATION}`"))?;
    let env = env
        .with_dotenv(&implementation.dotenv_path())
        .context("reading the implementation's .env")?;
    Ok((implementation, env))
}

/// `env` with the variable `name` set to `value`: how the tests point an
/// example at their own database (`DB_NAME`) without touching the process
/// environment.
#[must_use]
pub fn with_var(env: &Env, name: &str, value: &str) -> Env {
    Env::from_pairs(env.iter().chain([(name, value)]))
}

/// The archive of `implementation`, as `bigbrotr db init` opens it
/// ([`bigbrotr::open_archive_as`]: the pool of `config/core/pool.yaml`,
/// connected, its connections named `application_name` in
/// `pg_stat_activity`, and the settings of `config/core/brotr.yaml`), with
/// the schema of `sql/` applied (a database already up to date is left as
/// it is).
pub async fn open_archive(
    implementation: &Implementation,
    env: &Env,
    application_name: &str,
) -> anyhow::Result<Brotr> {
    let brotr = bigbrotr::open_archive_as(implementation, env, application_name).await?;
    if let Err(error) = bigbrotr_brotr::apply_schema(brotr.pool(), &implementation.sql_dir()).await
    {
        brotr.pool().disconnect(POOL_CLOSE_GRACE).await;
        return Err(anyhow::Error::new(error).context("applying the schema"));
    }
    Ok(brotr)
}

/// A Nostr relay running in this process on `127.0.0.1` (any free port),
/// holding events in memory, with a rate limit high enough for tests.
/// Stops when dropped.
#[derive(Debug)]
pub struct InProcessRelay {
    url: String,
    relay: LocalRelay,
}

impl InProcessRelay {
    /// Starts a relay holding `events`.
    pub async fn start(events: &[Event]) -> anyhow::Result<Self> {
        let database = MemoryDatabase::with_opts(MemoryDatabaseOptions {
            events: true,
            max_events: None,
        });
        for event in events {
            database
                .save_event(event)
                .await
                .context("storing an event in the in-process relay")?;
        }
        let relay = LocalRelay::new(RelayBuilder::default().database(database).rate_limit(
            RateLimit {
                max_reqs: 1000,
                notes_per_minute: 100_000,
            },
        ));
        relay.run().await.context("starting the in-process relay")?;
        let url = relay.url().await.as_str_without_trailing_slash().to_owned();
        Ok(Self { url, relay })
    }

    /// Its URL, `ws://127.0.0.1:<port>`.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for InProcessRelay {
    fn drop(&mut self) {
        self.relay.shutdown();
    }
}

/// What the test at the end of each example starts from.
pub mod testing {
    use bigbrotr_config::{Env, Implementation};
    use bigbrotr_test_support::TestDb;

    /// A fresh, empty database (through PgBouncer, dropped when the test
    /// passes), the implementation, and the environment `main` would read
    /// with `DB_NAME` pointing at that database. The database has no schema:
    /// [`open_archive`](crate::open_archive) creates it, as `main` does on a
    /// new database.
    ///
    /// # Panics
    ///
    /// When the database cannot be made: this is for tests.
    pub async fn fresh_database() -> (TestDb, Implementation, Env) {
        let db = TestDb::empty(crate::IMPLEMENTATION, 2)
            .await
            .expect("a test database");
        let (implementation, env) =
            crate::implementation(Env::from_process()).expect("the implementation");
        let env = crate::with_var(&env, "DB_NAME", db.name());
        (db, implementation, env)
    }

    /// The single number `sql` selects in `db`.
    ///
    /// # Panics
    ///
    /// When the query fails: this is for tests.
    pub async fn scalar(db: &TestDb, sql: &str) -> i64 {
        db.client()
            .await
            .expect("a connection to the test database")
            .query_typed(sql, &[])
            .await
            .expect("the query runs")[0]
            .get(0)
    }
}
