//! `bigbrotr db init`: the session limits it stores on the server for the
//! archive's user, seen by a new session opened straight on PostgreSQL (a
//! PgBouncer server connection opened earlier keeps its settings).

use std::process::Command;

use bigbrotr_config::{DatabaseConfig, PoolConfig, RetryConfig};
use bigbrotr_pool::ConnectionPool;
use bigbrotr_test_support::{workspace_root, PrivateCluster};
use secrecy::ExposeSecret as _;

/// `statement_timeout` and `idle_in_transaction_session_timeout` of a new
/// session on `database`.
async fn limits(database: &DatabaseConfig) -> (String, String) {
    let pool = ConnectionPool::new(database, &PoolConfig::default(), &RetryConfig::default())
        .expect("valid configuration");
    let row = pool
        .fetch_one(
            "SELECT current_setting('statement_timeout'), \
                    current_setting('idle_in_transaction_session_timeout')",
            &[],
        )
        .await
        .expect("the settings answer");
    pool.disconnect(std::time::Duration::from_secs(5)).await;
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn db_init_stores_the_session_limits_of_the_user_in_its_database() {
    let cluster = PrivateCluster::start("bigbrotr")
        .await
        .expect("a private cluster");
    // A database of its own: the cluster's has the SQL applied without
    // `db init`'s record of it.
    let server = ConnectionPool::new(
        &DatabaseConfig {
            database: "postgres".to_owned(),
            ..cluster.direct_database_config()
        },
        &PoolConfig::default(),
        &RetryConfig::default(),
    )
    .expect("valid configuration");
    server
        .batch_execute("CREATE DATABASE archive")
        .await
        .expect("a new database");
    server.disconnect(std::time::Duration::from_secs(5)).await;
    let through_pgbouncer = DatabaseConfig {
        database: "archive".to_owned(),
        ..cluster.database_config()
    };
    let direct = DatabaseConfig {
        database: "archive".to_owned(),
        ..cluster.direct_database_config()
    };
    assert_eq!(limits(&direct).await, ("0".to_owned(), "0".to_owned()));

    let output = Command::new(env!("CARGO_BIN_EXE_bigbrotr"))
        .arg("--root")
        .arg(workspace_root())
        .args(["db", "init"])
        .env("DB_HOST", &through_pgbouncer.host)
        .env("DB_PORT", through_pgbouncer.port.to_string())
        .env("DB_NAME", &through_pgbouncer.database)
        .env("DB_USER", &through_pgbouncer.user)
        .env("DB_PASSWORD", through_pgbouncer.password.expose_secret())
        .env("BIGBROTR_ROLE__STATEMENT_TIMEOUT", "90s")
        .output()
        .expect("bigbrotr runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The override and the shipped value of pool.yaml.
    assert_eq!(limits(&direct).await, ("90s".to_owned(), "1min".to_owned()));
    // Only in the archive's database.
    let elsewhere = DatabaseConfig {
        database: "postgres".to_owned(),
        ..direct
    };
    assert_eq!(limits(&elsewhere).await, ("0".to_owned(), "0".to_owned()));
}
