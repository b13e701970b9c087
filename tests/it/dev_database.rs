//! The development database and the fresh-database helper: PostgreSQL reached
//! through PgBouncer in transaction pool mode, with password auth.

use bigbrotr_test_support::{database_config, database_exists, TestDb};
use tokio_postgres::types::Type;
use tokio_postgres::NoTls;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_unnamed_statements_all_succeed_through_pgbouncer() {
    let db = TestDb::with_pool_size("bigbrotr", 16).await.unwrap();
    let tasks: Vec<_> = (0..64_i64)
        .map(|task| {
            let pool = db.pool().clone();
            tokio::spawn(async move {
                let mut failures = 0;
                for i in 0..25_i64 {
                    let client = pool.get().await.unwrap();
                    let n = task * 1000 + i;
                    match client
                        .query_typed("SELECT $1::int8 * 2", &[(&n, Type::INT8)])
                        .await
                    {
                        Ok(rows) => assert_eq!(rows[0].get::<_, i64>(0), n * 2),
                        Err(_) => failures += 1,
                    }
                }
                failures
            })
        })
        .collect();
    let mut failures = 0;
    for task in tasks {
        failures += task.await.unwrap();
    }
    assert_eq!(
        failures, 0,
        "64 tasks x 25 query_typed calls through PgBouncer"
    );
}

#[tokio::test]
async fn a_transaction_commits_or_rolls_back_whole() {
    let db = TestDb::new("bigbrotr").await.unwrap();
    let mut client = db.client().await.unwrap();
    client
        .batch_execute("CREATE TABLE t (n int8 PRIMARY KEY)")
        .await
        .unwrap();

    let tx = client.transaction().await.unwrap();
    for n in 0..10_i64 {
        tx.execute_typed("INSERT INTO t VALUES ($1)", &[(&n, Type::INT8)])
            .await
            .unwrap();
    }
    tx.rollback().await.unwrap();
    let count = |rows: Vec<tokio_postgres::Row>| rows[0].get::<_, i64>(0);
    let rows = client
        .query_typed("SELECT count(*) FROM t", &[])
        .await
        .unwrap();
    assert_eq!(count(rows), 0);

    let tx = client.transaction().await.unwrap();
    for n in 0..10_i64 {
        tx.execute_typed("INSERT INTO t VALUES ($1)", &[(&n, Type::INT8)])
            .await
            .unwrap();
    }
    // A duplicate key fails the statement; the transaction must then be rolled back.
    let duplicate = tx
        .execute_typed("INSERT INTO t VALUES ($1)", &[(&0_i64, Type::INT8)])
        .await;
    assert!(duplicate.is_err());
    drop(tx);
    let rows = client
        .query_typed("SELECT count(*) FROM t", &[])
        .await
        .unwrap();
    assert_eq!(count(rows), 0);

    let tx = client.transaction().await.unwrap();
    for n in 0..10_i64 {
        tx.execute_typed("INSERT INTO t VALUES ($1)", &[(&n, Type::INT8)])
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let rows = client
        .query_typed("SELECT count(*) FROM t", &[])
        .await
        .unwrap();
    assert_eq!(count(rows), 10);
}

#[tokio::test]
async fn a_test_database_is_dropped_when_its_test_passes() {
    let db = TestDb::new("bigbrotr").await.unwrap();
    let name = db.name().to_owned();
    let config = db.config().clone();
    assert!(database_exists(&config, &name).await.unwrap());
    drop(db);
    assert!(!database_exists(&config, &name).await.unwrap());
}

#[tokio::test]
async fn test_databases_are_separate() {
    let a = TestDb::new("bigbrotr").await.unwrap();
    let b = TestDb::new("bigbrotr").await.unwrap();
    assert_ne!(a.name(), b.name());
    a.client()
        .await
        .unwrap()
        .batch_execute("CREATE TABLE only_in_a (n int)")
        .await
        .unwrap();
    let rows = b
        .client()
        .await
        .unwrap()
        .query_typed(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 0);
}

#[tokio::test]
async fn a_wrong_password_is_refused() {
    let db = TestDb::new("bigbrotr").await.unwrap();
    let mut config = db.pg_config();
    config.password("not-the-password");
    let error = config.connect(NoTls).await.err().unwrap();
    let db_error = error.as_db_error().unwrap();
    // PgBouncer 1.18 ends a failed SCRAM exchange with 08P01 and this message;
    // PostgreSQL itself (and newer PgBouncers) with 28P01 invalid_password.
    assert!(
        matches!(db_error.code().code(), "28P01" | "08P01"),
        "{db_error}"
    );
    assert!(
        db_error.message().contains("authentication failed"),
        "{db_error}"
    );
}

#[tokio::test]
async fn pgbouncer_pools_in_transaction_mode() {
    let config = database_config("bigbrotr").unwrap();
    let mut pg = tokio_postgres::Config::new();
    pg.host(&config.host)
        .port(config.port)
        .user(&config.user)
        .password(secrecy::ExposeSecret::expose_secret(&config.password))
        .dbname("pgbouncer");
    let (client, connection) = pg.connect(NoTls).await.unwrap();
    tokio::spawn(connection);
    // The admin console speaks the simple protocol only.
    let messages = client.simple_query("SHOW CONFIG").await.unwrap();
    let pool_mode = messages.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(row) if row.get(0) == Some("pool_mode") => {
            row.get(1).map(str::to_owned)
        }
        _ => None,
    });
    assert_eq!(pool_mode.as_deref(), Some("transaction"));
}
