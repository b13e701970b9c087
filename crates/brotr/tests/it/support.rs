//! Shared set-up: a fresh database, a pool and a `Brotr` on it, and a few
//! helpers to build events and count rows.

use std::time::Duration;

use bigbrotr_brotr::Brotr;
use bigbrotr_config::{BrotrConfig, DatabaseConfig, PoolConfig, RetryConfig};
use bigbrotr_pool::ConnectionPool;
use bigbrotr_test_support::TestDb;
use nostr::{Event, EventBuilder, Keys, Kind, Tag, Timestamp};

/// Both implementations; they share the function contract.
pub(crate) const IMPLEMENTATIONS: [&str; 2] = ["bigbrotr", "lilbrotr"];

/// A fresh database and an archive on it; the database is dropped with it
/// when the test passed.
pub(crate) struct Fixture {
    pub(crate) brotr: Brotr,
    pub(crate) _db: TestDb,
}

impl Fixture {
    pub(crate) fn pool(&self) -> &ConnectionPool {
        self.brotr.pool()
    }

    /// `SELECT count(*)` of `table`.
    pub(crate) async fn count(&self, table: &str) -> i64 {
        count(self.pool(), table).await
    }
}

/// `SELECT count(*)` of `table`.
pub(crate) async fn count(pool: &ConnectionPool, table: &str) -> i64 {
    pool.fetch_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap_or_else(|e| panic!("count {table}: {e}"))
        .get(0)
}

/// Short limits, so failing tests fail fast.
pub(crate) fn pool_config(max_size: u32) -> PoolConfig {
    PoolConfig {
        min_size: 1,
        max_size,
        timeout: Duration::from_secs(20),
        command_timeout: Duration::from_secs(30),
    }
}

pub(crate) fn retry_config() -> RetryConfig {
    RetryConfig {
        max_attempts: 3,
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        exponential_base: 2.0,
    }
}

/// The connection settings of `db` (through PgBouncer).
pub(crate) fn database_config(db: &TestDb) -> DatabaseConfig {
    DatabaseConfig {
        database: db.name().to_owned(),
        ..db.config().clone()
    }
}

/// A connected pool of up to `max_size` connections on `db`.
pub(crate) async fn pool_on(db: &TestDb, max_size: u32) -> ConnectionPool {
    let pool = ConnectionPool::new(
        &database_config(db),
        &pool_config(max_size),
        &retry_config(),
    )
    .expect("valid pool configuration");
    pool.connect().await.expect("connect");
    pool
}

/// A fresh database of `implementation` and an archive with `config` on it.
pub(crate) async fn fixture_with(implementation: &str, config: BrotrConfig) -> Fixture {
    let db = TestDb::new(implementation).await.expect("test database");
    let pool = pool_on(&db, 8).await;
    let brotr = Brotr::new(pool, config).expect("valid brotr configuration");
    Fixture { brotr, _db: db }
}

/// A fresh database of `implementation` and an archive with the default
/// configuration on it.
pub(crate) async fn fixture(implementation: &str) -> Fixture {
    fixture_with(implementation, BrotrConfig::default()).await
}

/// A text note signed by `keys`.
pub(crate) fn note(keys: &Keys, content: &str) -> Event {
    EventBuilder::text_note(content)
        .sign_with_keys(keys)
        .expect("signed")
}

/// `n` distinct signed text notes.
pub(crate) fn notes(n: usize) -> Vec<Event> {
    let keys = Keys::generate();
    (0..n).map(|i| note(&keys, &format!("note {i}"))).collect()
}

/// A signed event of `kind` with `tags` and `content`.
pub(crate) fn signed(kind: u16, tags: Vec<Vec<String>>, content: &str) -> Event {
    let tags = tags.into_iter().map(|t| Tag::parse(t).expect("a tag"));
    EventBuilder::new(Kind::from_u16(kind), content)
        .tags(tags)
        .custom_created_at(Timestamp::from_secs(1_700_000_000))
        .sign_with_keys(&Keys::generate())
        .expect("signed")
}

pub(crate) use bigbrotr_test_support::corpus_dir;
