//! Connecting, health checks and disconnecting.

use std::time::Duration;

use bigbrotr_config::{DatabaseConfig, PoolConfig};
use bigbrotr_pool::{ConnectionPool, Error};
use bigbrotr_test_support::TestDb;
use secrecy::SecretString;
use tokio::time::Instant;

use crate::support::{
    database_config, delta, eventually, fast_retry, fixture, fixture_with, pool_config, Delta,
};

#[tokio::test]
async fn connect_opens_min_size_connections_and_checks_each() {
    let db = TestDb::new("bigbrotr").await.expect("test database");
    let pool_cfg = PoolConfig {
        min_size: 3,
        ..pool_config(5)
    };
    let pool =
        ConnectionPool::new(&database_config(&db), &pool_cfg, &fast_retry(3)).expect("valid");
    assert!(!pool.is_connected());

    pool.connect().await.expect("connect");

    assert!(pool.is_connected());
    let stats = pool.stats();
    assert_eq!(
        (stats.max_size, stats.size, stats.idle, stats.in_use),
        (5, 3, 3, 0)
    );
    assert_eq!((stats.calls, stats.errors, stats.retries), (3, 0, 0));
}

#[tokio::test]
async fn the_health_check_answers_within_its_limit_and_counts_one_call() {
    let f = fixture().await;
    let before = f.pool.stats();

    let latency = f
        .pool
        .health_check(Duration::from_secs(2))
        .await
        .expect("healthy");

    assert!(latency < Duration::from_secs(2));
    assert_eq!(
        delta(before, f.pool.stats()),
        Delta {
            calls: 1,
            ..Delta::default()
        }
    );
}

#[tokio::test]
async fn after_disconnect_every_call_fails_with_closed() {
    let f = fixture().await;

    assert_eq!(f.pool.disconnect(Duration::from_secs(1)).await, 0);

    assert!(!f.pool.is_connected());
    assert!(f.pool.is_closed());
    assert!(matches!(
        f.pool.fetch_all("SELECT 1", &[]).await,
        Err(Error::Closed)
    ));
    assert!(matches!(
        f.pool.execute("SELECT 1", &[]).await,
        Err(Error::Closed)
    ));
    assert!(matches!(f.pool.begin().await, Err(Error::Closed)));
    assert!(matches!(f.pool.get_connection().await, Err(Error::Closed)));
    assert!(matches!(
        f.pool.health_check(Duration::from_secs(1)).await,
        Err(Error::Closed)
    ));
    assert!(matches!(f.pool.connect().await, Err(Error::Closed)));
    let stats = f.pool.stats();
    assert_eq!((stats.size, stats.max_size), (0, 0));
}

#[tokio::test]
async fn disconnect_lets_a_call_in_flight_finish_within_the_grace_period() {
    let f = fixture().await;
    let pool = f.pool.clone();
    let call = tokio::spawn(async move {
        pool.fetch_one("SELECT 42::int8 FROM pg_sleep(0.3)", &[])
            .await
            .map(|row| row.get::<_, i64>(0))
    });
    let pool = f.pool.clone();
    assert!(eventually(Duration::from_secs(2), || pool.stats().in_use == 1).await);

    let started = Instant::now();
    let still_in_use = f.pool.disconnect(Duration::from_secs(5)).await;

    assert_eq!(still_in_use, 0);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(call.await.expect("task").expect("the call finished"), 42);
    assert_eq!(f.pool.stats().size, 0);
}

#[tokio::test]
async fn disconnect_stops_calls_still_running_after_the_grace_period() {
    let f = fixture().await;
    let pool = f.pool.clone();
    let call = tokio::spawn(async move { pool.execute("SELECT pg_sleep(5)", &[]).await });
    let pool = f.pool.clone();
    assert!(eventually(Duration::from_secs(2), || pool.stats().in_use == 1).await);
    let before = f.pool.stats();

    let started = Instant::now();
    let still_in_use = f.pool.disconnect(Duration::from_millis(100)).await;

    assert_eq!(still_in_use, 1);
    let result = tokio::time::timeout(Duration::from_secs(2), call)
        .await
        .expect("the call stopped")
        .expect("task");
    assert!(matches!(result, Err(Error::Closed)), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        delta(before, f.pool.stats()),
        Delta {
            errors: 1,
            discarded: 1,
            ..Delta::default()
        }
    );
}

#[tokio::test]
async fn connecting_to_a_closed_port_fails_after_every_attempt_with_backoff() {
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let database = DatabaseConfig {
        host: "127.0.0.1".to_owned(),
        port,
        database: "nowhere".to_owned(),
        password: SecretString::from("hunter2-s3cret"),
        ..DatabaseConfig::default()
    };
    let mut retry = fast_retry(4);
    retry.initial_delay = Duration::from_millis(40);
    retry.max_delay = Duration::from_secs(1);
    let pool = ConnectionPool::new(&database, &pool_config(2), &retry).expect("valid");

    let started = Instant::now();
    let error = pool.connect().await.expect_err("nothing listens there");
    let elapsed = started.elapsed();

    // Waits of 40, 80 and 160 ms between the four attempts.
    assert!(elapsed >= Duration::from_millis(280), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    let Error::Unavailable { attempts, source } = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert_eq!(*attempts, 4);
    assert!(
        matches!(&**source, Error::Connect { host, port: p, database, .. }
            if host == "127.0.0.1" && *p == port && database == "nowhere"),
        "{source:?}"
    );
    assert!(error.is_transient());
    let stats = pool.stats();
    assert_eq!(
        (stats.connect_errors, stats.retries, stats.calls),
        (4, 3, 0)
    );
    assert!(!pool.is_connected());

    let mut chain = format!("{error:?}");
    let mut cause: Option<&dyn std::error::Error> = Some(&error);
    while let Some(e) = cause {
        chain.push_str(&e.to_string());
        cause = e.source();
    }
    assert!(!chain.contains("hunter2"));
}

#[tokio::test]
async fn a_wrong_password_fails_at_once_without_retrying() {
    let db = TestDb::new("bigbrotr").await.expect("test database");
    let database = DatabaseConfig {
        password: SecretString::from("certainly-not-the-password"),
        ..database_config(&db)
    };
    let pool = ConnectionPool::new(&database, &pool_config(2), &fast_retry(4)).expect("valid");

    let error = pool.connect().await.expect_err("wrong password");

    assert!(matches!(error, Error::Connect { .. }), "{error:?}");
    assert!(!error.is_transient());
    assert_eq!((pool.stats().connect_errors, pool.stats().retries), (1, 0));
}

#[tokio::test]
async fn connect_with_min_size_zero_still_checks_one_connection() {
    let pool_cfg = PoolConfig {
        min_size: 0,
        ..pool_config(2)
    };
    let f = fixture_with(pool_cfg, fast_retry(2)).await;
    let stats = f.pool.stats();
    assert_eq!((stats.size, stats.calls), (1, 1));
}
