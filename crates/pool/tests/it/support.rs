//! Shared set-up: a fresh database and a pool on it.

use std::time::Duration;

use bigbrotr_config::{DatabaseConfig, PoolConfig, RetryConfig};
use bigbrotr_pool::{ConnectionPool, PoolStats};
use bigbrotr_test_support::TestDb;

/// A fresh database and a pool on it; the database is dropped with it when
/// the test passed.
pub(crate) struct Fixture {
    pub(crate) pool: ConnectionPool,
    pub(crate) _db: TestDb,
}

/// A pool of up to `max_size` connections, one opened by `connect`, with
/// short time limits so failing tests fail fast.
pub(crate) fn pool_config(max_size: u32) -> PoolConfig {
    PoolConfig {
        min_size: 1,
        max_size,
        timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(5),
    }
}

/// `max_attempts` attempts 20 ms, 40 ms, 80 ms… apart.
pub(crate) fn fast_retry(max_attempts: u32) -> RetryConfig {
    RetryConfig {
        max_attempts,
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

/// A fresh database and a connected pool on it.
pub(crate) async fn fixture_with(pool: PoolConfig, retry: RetryConfig) -> Fixture {
    let db = TestDb::new("bigbrotr").await.expect("test database");
    let pool =
        ConnectionPool::new(&database_config(&db), &pool, &retry).expect("valid configuration");
    pool.connect().await.expect("connect");
    Fixture { pool, _db: db }
}

/// A fresh database and a connected pool of up to 4 connections.
pub(crate) async fn fixture() -> Fixture {
    fixture_with(pool_config(4), fast_retry(3)).await
}

/// The counters that grew between `before` and `after`, connection figures
/// left out.
#[derive(Debug, PartialEq, Eq, Default)]
pub(crate) struct Delta {
    pub(crate) calls: u64,
    pub(crate) errors: u64,
    pub(crate) timeouts: u64,
    pub(crate) retries: u64,
    pub(crate) discarded: u64,
    pub(crate) wait_timeouts: u64,
    pub(crate) connect_errors: u64,
}

pub(crate) fn delta(before: PoolStats, after: PoolStats) -> Delta {
    Delta {
        calls: after.calls - before.calls,
        errors: after.errors - before.errors,
        timeouts: after.timeouts - before.timeouts,
        retries: after.retries - before.retries,
        discarded: after.discarded - before.discarded,
        wait_timeouts: after.wait_timeouts - before.wait_timeouts,
        connect_errors: after.connect_errors - before.connect_errors,
    }
}

/// Waits until `check` holds, up to `limit`.
pub(crate) async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
