//! `bigbrotr db init`: the session limits it stores on the server for the
//! archive's user, seen by a new session opened straight on PostgreSQL (a
//! PgBouncer server connection opened earlier keeps its settings).

use std::process::Command;

use bigbrotr_config::{DatabaseConfig, PoolConfig, RetryConfig};
use bigbrotr_pool::tokio_postgres::error::SqlState;
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

/// A private cluster with an empty database `archive` of its own (the
/// cluster's database has the SQL applied without `db init`'s record of it),
/// reached through PgBouncer and directly.
async fn cluster_with_archive() -> (PrivateCluster, DatabaseConfig, DatabaseConfig) {
    let cluster = PrivateCluster::start("bigbrotr")
        .await
        .expect("a private cluster");
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
    (cluster, through_pgbouncer, direct)
}

#[tokio::test]
async fn db_init_stores_the_session_limits_of_the_user_in_its_database() {
    let (_cluster, through_pgbouncer, direct) = cluster_with_archive().await;
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

/// A pool on `database` logged in as `user` with `password`.
fn pool_as(database: &DatabaseConfig, user: &str, password: &str) -> ConnectionPool {
    ConnectionPool::new(
        &DatabaseConfig {
            user: user.to_owned(),
            password: password.to_owned().into(),
            ..database.clone()
        },
        &PoolConfig::default(),
        &RetryConfig::default(),
    )
    .expect("valid configuration")
}

#[tokio::test]
async fn db_init_makes_a_reader_that_only_reads_and_a_writer_that_cannot_change_the_schema() {
    let (_cluster, through_pgbouncer, direct) = cluster_with_archive().await;
    let init = || {
        Command::new(env!("CARGO_BIN_EXE_bigbrotr"))
            .arg("--root")
            .arg(workspace_root())
            .args(["db", "init"])
            .env("DB_HOST", &through_pgbouncer.host)
            .env("DB_PORT", through_pgbouncer.port.to_string())
            .env("DB_NAME", &through_pgbouncer.database)
            .env("DB_USER", &through_pgbouncer.user)
            .env("DB_PASSWORD", through_pgbouncer.password.expose_secret())
            .env("BIGBROTR_ROLES__READER", "analyst")
            .env("BIGBROTR_ROLES__WRITER", "archiver")
            .env("BIGBROTR_READER_PASSWORD", "reader secret")
            .env("BIGBROTR_WRITER_PASSWORD", "writer 'secret'")
            .output()
            .expect("bigbrotr runs")
    };
    for _ in 0..2 {
        let output = init();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains("role `analyst` created or updated"),
            "{stdout}"
        );
        assert!(
            stdout.contains("role `archiver` created or updated"),
            "{stdout}"
        );
    }

    let reader = pool_as(&direct, "analyst", "reader secret");
    reader.connect().await.expect("the reader connects");
    let events: i64 = reader
        .fetch_one("SELECT count(*) FROM events", &[])
        .await
        .expect("the reader reads a table")
        .get(0);
    assert_eq!(events, 0);
    reader
        .fetch_all("SELECT * FROM relay_metadata_latest", &[])
        .await
        .expect("the reader reads a view");
    for write in [
        "INSERT INTO relays (url, network, inserted_at) VALUES ('wss://r.example', 'clearnet', 0)",
        "CREATE TABLE notes (a int)",
    ] {
        let refused = reader.batch_execute(write).await.expect_err(write);
        assert!(
            [
                &SqlState::READ_ONLY_SQL_TRANSACTION,
                &SqlState::INSUFFICIENT_PRIVILEGE
            ]
            .contains(&refused.code().expect("a server error")),
            "{write}: {refused:?}"
        );
    }
    // Without the read-only default, the grants alone still refuse writes.
    let refused = reader
        .batch_execute(
            "BEGIN READ WRITE; \
             INSERT INTO relays (url, network, inserted_at) VALUES ('wss://r.example', 'clearnet', 0); \
             COMMIT",
        )
        .await
        .expect_err("no INSERT privilege");
    assert_eq!(
        refused.code(),
        Some(&SqlState::INSUFFICIENT_PRIVILEGE),
        "{refused:?}"
    );
    // The archive relay needs no more than the reader may do.
    let relay = bigbrotr_relay::RelayServer::bind(
        bigbrotr_relay::RelayConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            ..bigbrotr_relay::RelayConfig::default()
        },
        reader.clone(),
        bigbrotr_service_runtime::Metrics::new().for_service("relay"),
    )
    .await
    .expect("the relay starts as the reader");
    let client = nostr_sdk::Client::default();
    client
        .add_relay(format!("ws://{}", relay.local_addr()))
        .await
        .expect("relay");
    client.connect().await;
    let mut notifications = client.notifications();
    client
        .subscribe(nostr::Filter::new().limit(5), None)
        .await
        .expect("subscribed");
    let answer = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            if let Ok(nostr_sdk::RelayPoolNotification::Message { message, .. }) =
                notifications.recv().await
            {
                match message {
                    nostr::RelayMessage::EndOfStoredEvents(_) => return "EOSE".to_owned(),
                    nostr::RelayMessage::Closed { message, .. } => return message.into_owned(),
                    _ => {}
                }
            }
        }
    })
    .await
    .expect("an answer within 20 s");
    assert_eq!(answer, "EOSE");
    client.disconnect().await;
    relay.shutdown().await;
    reader.disconnect(std::time::Duration::from_secs(5)).await;
    let owner = ConnectionPool::new(&direct, &PoolConfig::default(), &RetryConfig::default())
        .expect("valid configuration");
    for (role, may) in [("analyst", false), ("archiver", true)] {
        let granted: bool = owner
            .fetch_one(
                "SELECT has_function_privilege($1, 'refresh_stats_view(text)', 'EXECUTE')",
                &[(&role, bigbrotr_pool::Type::TEXT)],
            )
            .await
            .expect("an answer")
            .get(0);
        assert_eq!(granted, may, "{role} may refresh the statistics views");
    }
    owner.disconnect(std::time::Duration::from_secs(5)).await;

    let writer = pool_as(&direct, "archiver", "writer 'secret'");
    writer
        .batch_execute(
            "INSERT INTO relays (url, network, inserted_at) VALUES ('wss://w.example', 'clearnet', 0)",
        )
        .await
        .expect("the writer writes rows");
    let refused = writer
        .batch_execute("CREATE TABLE notes (a int)")
        .await
        .expect_err("the writer cannot change the schema");
    assert_eq!(
        refused.code(),
        Some(&SqlState::INSUFFICIENT_PRIVILEGE),
        "{refused:?}"
    );
    let timeout: String = writer
        .fetch_one("SELECT current_setting('statement_timeout')", &[])
        .await
        .expect("a setting")
        .get(0);
    assert_eq!(timeout, "5min");
    // Refreshing a statistics view takes its owner: the writer may, through
    // the one function made for it.
    writer
        .batch_execute("SELECT refresh_stats_view('stats_relay_kinds')")
        .await
        .expect("the writer refreshes a statistics view");
    writer.disconnect(std::time::Duration::from_secs(5)).await;

    // A wrong password is refused: the verifier stored is the password's.
    let wrong = pool_as(&direct, "analyst", "guess");
    assert!(wrong.fetch_one("SELECT 1", &[]).await.is_err());
}
