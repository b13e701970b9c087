//! Timeouts, an exhausted pool, broken connections and an unreachable
//! database.

use std::net::SocketAddr;
use std::time::Duration;

use bigbrotr_config::{DatabaseConfig, PoolConfig};
use bigbrotr_pool::{ConnectionPool, Error, PoolErrorKind, Type};
use bigbrotr_test_support::TestDb;
use tokio::time::Instant;

use crate::proxy::Proxy;
use crate::support::{
    database_config, delta, eventually, fast_retry, fixture_with, pool_config, Delta,
};

/// Sessions of the current database running `pg_sleep`, other than the
/// asking one.
async fn sleeping_sessions(pool: &ConnectionPool) -> i64 {
    pool.fetch_one(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND state = 'active' \
         AND query LIKE 'SELECT pg_sleep%' AND pid <> pg_backend_pid()",
        &[],
    )
    .await
    .expect("pg_stat_activity")
    .get(0)
}

#[tokio::test]
async fn a_statement_over_the_command_timeout_is_cut_off_and_its_connection_discarded() {
    let pool_cfg = PoolConfig {
        command_timeout: Duration::from_millis(200),
        ..pool_config(2)
    };
    let f = fixture_with(pool_cfg, fast_retry(3)).await;
    let before = f.pool.stats();

    let started = Instant::now();
    let result = f.pool.execute("SELECT pg_sleep(5)", &[]).await;
    let elapsed = started.elapsed();

    assert!(
        matches!(result, Err(Error::Timeout { what: "execute", after }) if after == Duration::from_millis(200)),
        "{result:?}"
    );
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert_eq!(
        delta(before, f.pool.stats()),
        Delta {
            calls: 1,
            errors: 1,
            timeouts: 1,
            discarded: 1,
            ..Delta::default()
        }
    );

    // The next call works, on another connection.
    let one: i32 = f
        .pool
        .fetch_one("SELECT 1", &[])
        .await
        .expect("next call")
        .get(0);
    assert_eq!(one, 1);

    // The statement was cancelled on the server, not left sleeping.
    let deadline = Instant::now() + Duration::from_secs(3);
    while sleeping_sessions(&f.pool).await > 0 {
        assert!(
            Instant::now() < deadline,
            "pg_sleep(5) still runs on the server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Lets the cancel request of the stopped call finish before the test
    // ends: PgBouncer 1.18 exits when a cancel connection closes too early.
    f.pool.disconnect(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_statement_of_a_transaction_may_outlast_the_command_timeout_within_its_own_limit() {
    let pool_cfg = PoolConfig {
        command_timeout: Duration::from_millis(200),
        ..pool_config(2)
    };
    let f = fixture_with(pool_cfg, fast_retry(3)).await;

    // Longer than the command timeout, within its own limit: done.
    let mut tx = f.pool.begin().await.expect("begin");
    let rows = tx
        .execute_within(Duration::from_secs(5), "SELECT pg_sleep(0.4)", &[])
        .await
        .expect("within its limit");
    assert_eq!(rows, 1);
    tx.commit().await.expect("commit");

    // Past its own limit: cut off, the transaction lost with its connection.
    let before = f.pool.stats();
    let mut tx = f.pool.begin().await.expect("begin");
    let result = tx
        .execute_within(Duration::from_millis(300), "SELECT pg_sleep(5)", &[])
        .await;
    assert!(
        matches!(result, Err(Error::Timeout { what: "execute", after }) if after == Duration::from_millis(300)),
        "{result:?}"
    );
    assert!(tx.is_aborted());
    assert!(matches!(tx.commit().await, Err(Error::Discarded { .. })));
    let d = delta(before, f.pool.stats());
    assert_eq!((d.timeouts, d.discarded), (1, 1));
    // Lets the cancel request of the stopped call finish before the test
    // ends: PgBouncer 1.18 exits when a cancel connection closes too early.
    f.pool.disconnect(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_read_that_times_out_is_not_retried() {
    let pool_cfg = PoolConfig {
        command_timeout: Duration::from_millis(150),
        ..pool_config(2)
    };
    let f = fixture_with(pool_cfg, fast_retry(3)).await;
    let before = f.pool.stats();

    let result = f.pool.fetch_all("SELECT pg_sleep(5)", &[]).await;

    assert!(
        matches!(
            result,
            Err(Error::Timeout {
                what: "fetch_all",
                ..
            })
        ),
        "{result:?}"
    );
    let d = delta(before, f.pool.stats());
    assert_eq!((d.calls, d.timeouts, d.retries, d.discarded), (1, 1, 0, 1));
    // Lets the cancel request of the stopped call finish before the test
    // ends: PgBouncer 1.18 exits when a cancel connection closes too early.
    f.pool.disconnect(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn an_exhausted_pool_gives_a_typed_wait_timeout() {
    let pool_cfg = PoolConfig {
        timeout: Duration::from_millis(200),
        ..pool_config(1)
    };
    let f = fixture_with(pool_cfg, fast_retry(3)).await;
    let held = f.pool.get_connection().await.expect("the only connection");
    let before = f.pool.stats();

    let started = Instant::now();
    let result = f.pool.fetch_all("SELECT 1", &[]).await;
    let elapsed = started.elapsed();

    let error = result.expect_err("no connection free");
    assert!(error.is_wait_timeout(), "{error:?}");
    assert!(
        matches!(
            error,
            Error::Pool { kind: PoolErrorKind::WaitTimeout { after }, .. } if after == Duration::from_millis(200)
        ),
        "{error:?}"
    );
    assert!(!error.is_transient());
    // Waited once: a wait timeout is not retried (the delta below shows no
    // retry either).
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert_eq!(
        delta(before, f.pool.stats()),
        Delta {
            wait_timeouts: 1,
            ..Delta::default()
        }
    );

    drop(held);
    let one: i32 = f
        .pool
        .fetch_one("SELECT 1", &[])
        .await
        .expect("free again")
        .get(0);
    assert_eq!(one, 1);
}

#[tokio::test]
async fn a_call_abandoned_half_way_discards_its_connection() {
    let f = fixture_with(pool_config(2), fast_retry(3)).await;
    let before = f.pool.stats();

    let abandoned = tokio::time::timeout(
        Duration::from_millis(100),
        f.pool.execute("SELECT pg_sleep(5)", &[]),
    )
    .await;

    assert!(abandoned.is_err());
    let d = delta(before, f.pool.stats());
    assert_eq!((d.calls, d.discarded), (1, 1));
    let one: i32 = f
        .pool
        .fetch_one("SELECT 1", &[])
        .await
        .expect("next call")
        .get(0);
    assert_eq!(one, 1);
    // Lets the cancel request of the stopped call finish before the test
    // ends: PgBouncer 1.18 exits when a cancel connection closes too early.
    f.pool.disconnect(Duration::from_secs(5)).await;
}

/// A fresh database reached through a proxy in front of PgBouncer.
async fn through_proxy(retry_attempts: u32) -> (TestDb, Proxy, ConnectionPool) {
    let db = TestDb::new("bigbrotr").await.expect("test database");
    let upstream: SocketAddr =
        tokio::net::lookup_host((db.config().host.as_str(), db.config().port))
            .await
            .expect("resolve PgBouncer")
            .next()
            .expect("an address");
    let proxy = Proxy::start(upstream).await;
    let database = DatabaseConfig {
        host: "127.0.0.1".to_owned(),
        port: proxy.port(),
        ..database_config(&db)
    };
    let pool_cfg = PoolConfig {
        timeout: Duration::from_secs(2),
        ..pool_config(2)
    };
    let pool =
        ConnectionPool::new(&database, &pool_cfg, &fast_retry(retry_attempts)).expect("valid");
    pool.connect().await.expect("connect through the proxy");
    (db, proxy, pool)
}

#[tokio::test]
async fn a_read_is_retried_on_a_fresh_connection_when_its_connection_breaks() {
    let (_db, proxy, pool) = through_proxy(3).await;
    let before = pool.stats();
    let call = tokio::spawn({
        let pool = pool.clone();
        async move {
            pool.fetch_one("SELECT 7::int8 FROM pg_sleep(0.3)", &[])
                .await
                .map(|row| row.get::<_, i64>(0))
        }
    });
    assert!(eventually(Duration::from_secs(2), || pool.stats().in_use == 1).await);
    tokio::time::sleep(Duration::from_millis(50)).await;

    proxy.sever_all();

    assert_eq!(call.await.expect("task").expect("retried and answered"), 7);
    assert_eq!(
        delta(before, pool.stats()),
        Delta {
            calls: 2,
            errors: 1,
            retries: 1,
            discarded: 1,
            ..Delta::default()
        }
    );
}

#[tokio::test]
async fn execute_is_not_retried_when_its_connection_breaks() {
    let (_db, proxy, pool) = through_proxy(3).await;
    let before = pool.stats();
    let call = tokio::spawn({
        let pool = pool.clone();
        async move { pool.execute("SELECT pg_sleep(0.3)", &[]).await }
    });
    assert!(eventually(Duration::from_secs(2), || pool.stats().in_use == 1).await);
    tokio::time::sleep(Duration::from_millis(50)).await;

    proxy.sever_all();

    let error = call.await.expect("task").expect_err("the connection broke");
    assert!(
        matches!(
            error,
            Error::Query {
                what: "execute",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.is_transient());
    let d = delta(before, pool.stats());
    assert_eq!((d.calls, d.errors, d.retries, d.discarded), (1, 1, 0, 1));
}

#[tokio::test]
async fn while_the_database_is_unreachable_calls_fail_fast_and_the_pool_recovers() {
    let (_db, proxy, pool) = through_proxy(3).await;
    proxy.set_down(true);
    proxy.sever_all();
    // The idle connection notices its end before it is handed out again.
    tokio::time::sleep(Duration::from_millis(50)).await;

    let started = Instant::now();
    let error = pool
        .fetch_all("SELECT $1::int8", &[(&1_i64, Type::INT8)])
        .await
        .expect_err("unreachable");
    let elapsed = started.elapsed();

    let Error::Unavailable { attempts, source } = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert_eq!(*attempts, 3);
    assert!(matches!(**source, Error::Connect { .. }), "{source:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert!(pool
        .execute("SELECT 1", &[])
        .await
        .expect_err("still down")
        .is_transient());

    proxy.set_down(false);
    let rows = pool
        .fetch_all("SELECT $1::int8", &[(&9_i64, Type::INT8)])
        .await
        .expect("recovered");
    assert_eq!(rows[0].get::<_, i64>(0), 9);
    pool.health_check(Duration::from_secs(1))
        .await
        .expect("healthy again");
    assert!(pool.is_connected());
}
