//! Transactions (all or nothing) and binary COPY inside them.

use std::time::Duration;

use bigbrotr_pool::tokio_postgres::error::SqlState;
use bigbrotr_pool::{ConnectionPool, Error, Type};

use crate::support::{delta, eventually, fast_retry, fixture, fixture_with, pool_config, Delta};

const CREATE: &str = "CREATE TABLE note (id int8 PRIMARY KEY, body text NOT NULL)";
const INSERT: &str = "INSERT INTO note (id, body) VALUES ($1, $2)";

async fn count(pool: &ConnectionPool) -> i64 {
    pool.fetch_one("SELECT count(*) FROM note", &[])
        .await
        .expect("count")
        .get(0)
}

#[tokio::test]
async fn a_transaction_that_succeeds_commits_every_statement() {
    let f = fixture().await;
    f.pool.batch_execute(CREATE).await.expect("create");
    let before = f.pool.stats();

    let inserted = f
        .pool
        .transaction(|tx| {
            Box::pin(async move {
                let a = tx
                    .execute(INSERT, &[(&1_i64, Type::INT8), (&"a", Type::TEXT)])
                    .await?;
                let b = tx
                    .execute(INSERT, &[(&2_i64, Type::INT8), (&"b", Type::TEXT)])
                    .await?;
                Ok::<_, Error>(a + b)
            })
        })
        .await
        .expect("transaction");

    assert_eq!(inserted, 2);
    // BEGIN, two inserts, COMMIT.
    assert_eq!(
        delta(before, f.pool.stats()),
        Delta {
            calls: 4,
            ..Delta::default()
        }
    );
    assert_eq!(count(&f.pool).await, 2);
}

#[tokio::test]
async fn a_transaction_that_fails_rolls_every_statement_back() {
    let f = fixture().await;
    f.pool.batch_execute(CREATE).await.expect("create");

    let result = f
        .pool
        .transaction(|tx| {
            Box::pin(async move {
                tx.execute(INSERT, &[(&1_i64, Type::INT8), (&"a", Type::TEXT)])
                    .await?;
                tx.execute(INSERT, &[(&1_i64, Type::INT8), (&"again", Type::TEXT)])
                    .await?;
                Ok::<_, Error>(())
            })
        })
        .await;

    let error = result.expect_err("duplicate key");
    assert_eq!(error.code(), Some(&SqlState::UNIQUE_VIOLATION));
    assert_eq!(count(&f.pool).await, 0);
    assert_eq!(f.pool.stats().discarded, 0);
}

#[tokio::test]
async fn a_transaction_can_fail_with_the_callers_own_error_type() {
    type AppError = Box<dyn std::error::Error + Send + Sync>;
    let f = fixture().await;
    f.pool.batch_execute(CREATE).await.expect("create");

    let result: Result<(), AppError> = f
        .pool
        .transaction(|tx| {
            Box::pin(async move {
                tx.execute(INSERT, &[(&1_i64, Type::INT8), (&"a", Type::TEXT)])
                    .await?;
                Err("refused by the caller".into())
            })
        })
        .await;

    assert_eq!(
        result.expect_err("refused").to_string(),
        "refused by the caller"
    );
    assert_eq!(count(&f.pool).await, 0);
}

#[tokio::test]
async fn begin_then_rollback_leaves_nothing_and_begin_then_commit_keeps_everything() {
    let f = fixture().await;
    f.pool.batch_execute(CREATE).await.expect("create");

    let mut tx = f.pool.begin().await.expect("begin");
    tx.execute(INSERT, &[(&1_i64, Type::INT8), (&"gone", Type::TEXT)])
        .await
        .expect("insert");
    let seen: i64 = tx
        .fetch_one("SELECT count(*) FROM note", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(seen, 1);
    tx.rollback().await.expect("rollback");
    assert_eq!(count(&f.pool).await, 0);

    let mut tx = f.pool.begin().await.expect("begin");
    tx.execute(INSERT, &[(&2_i64, Type::INT8), (&"kept", Type::TEXT)])
        .await
        .expect("insert");
    tx.commit().await.expect("commit");
    let body: String = f
        .pool
        .fetch_one("SELECT body FROM note", &[])
        .await
        .expect("fetch")
        .get(0);
    assert_eq!(body, "kept");
}

#[tokio::test]
async fn a_dropped_transaction_is_rolled_back_and_its_connection_reused() {
    let f = fixture_with(pool_config(1), fast_retry(2)).await;
    f.pool.batch_execute(CREATE).await.expect("create");

    let mut tx = f.pool.begin().await.expect("begin");
    tx.execute(INSERT, &[(&1_i64, Type::INT8), (&"dropped", Type::TEXT)])
        .await
        .expect("insert");
    drop(tx);

    // With one connection, this waits for the background rollback to give
    // it back.
    assert_eq!(count(&f.pool).await, 0);
    let stats = f.pool.stats();
    assert_eq!((stats.discarded, stats.size), (0, 1));
}

#[tokio::test]
async fn commit_after_a_failed_statement_rolls_back_and_says_so() {
    let f = fixture().await;
    f.pool.batch_execute(CREATE).await.expect("create");

    let mut tx = f.pool.begin().await.expect("begin");
    tx.execute(INSERT, &[(&1_i64, Type::INT8), (&"a", Type::TEXT)])
        .await
        .expect("insert");
    let failed = tx
        .execute(INSERT, &[(&1_i64, Type::INT8), (&"a", Type::TEXT)])
        .await;
    assert!(failed.is_err());
    assert!(tx.is_aborted());

    let committed = tx.commit().await;

    assert!(
        matches!(committed, Err(Error::TransactionAborted)),
        "{committed:?}"
    );
    assert_eq!(count(&f.pool).await, 0);
    assert_eq!(f.pool.stats().discarded, 0);
}

#[tokio::test]
async fn binary_copy_in_a_transaction_lands_exact_rows() {
    let f = fixture().await;
    f.pool
        .batch_execute(
            "CREATE TABLE copied_event (id int8 PRIMARY KEY, pubkey bytea NOT NULL, content text NOT NULL, tags text[] NOT NULL)",
        )
        .await
        .expect("create");
    let rows: Vec<(i64, Vec<u8>, String, Vec<String>)> = (0..2_000_i64)
        .map(|i| {
            let byte = u8::try_from(i % 251).expect("small");
            (
                i,
                vec![byte; 32],
                format!("note {i} ✓"),
                vec![format!("t{i}"), "p".to_owned()],
            )
        })
        .collect();

    let mut tx = f.pool.begin().await.expect("begin");
    let mut copy = tx
        .copy_in_binary(
            "COPY copied_event (id, pubkey, content, tags) FROM STDIN (FORMAT binary)",
            &[Type::INT8, Type::BYTEA, Type::TEXT, Type::TEXT_ARRAY],
        )
        .await
        .expect("copy starts");
    for (id, pubkey, content, tags) in &rows {
        copy.write(&[id, pubkey, content, tags])
            .await
            .expect("row written");
    }
    assert_eq!(copy.finish().await.expect("copy finished"), 2_000);
    tx.commit().await.expect("commit");

    let stored = f
        .pool
        .fetch_all(
            "SELECT id, pubkey, content, tags FROM copied_event ORDER BY id",
            &[],
        )
        .await
        .expect("fetch");
    let stored: Vec<(i64, Vec<u8>, String, Vec<String>)> = stored
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
        .collect();
    assert_eq!(stored, rows);
}

#[tokio::test]
async fn a_copy_row_of_the_wrong_length_is_refused_and_the_copy_goes_on() {
    let f = fixture().await;
    f.pool.batch_execute(CREATE).await.expect("create");

    let mut tx = f.pool.begin().await.expect("begin");
    let mut copy = tx
        .copy_in_binary(
            "COPY note (id, body) FROM STDIN (FORMAT binary)",
            &[Type::INT8, Type::TEXT],
        )
        .await
        .expect("copy starts");
    let refused = copy.write(&[&1_i64]).await;
    assert!(
        matches!(
            refused,
            Err(Error::CopyRowLength {
                expected: 2,
                found: 1
            })
        ),
        "{refused:?}"
    );
    copy.write(&[&1_i64, &"one"]).await.expect("row written");
    assert_eq!(copy.finish().await.expect("finished"), 1);
    tx.commit().await.expect("commit");
    assert_eq!(count(&f.pool).await, 1);
}

#[tokio::test]
async fn an_abandoned_copy_aborts_its_transaction() {
    let f = fixture().await;
    f.pool.batch_execute(CREATE).await.expect("create");

    let mut tx = f.pool.begin().await.expect("begin");
    let mut copy = tx
        .copy_in_binary(
            "COPY note (id, body) FROM STDIN (FORMAT binary)",
            &[Type::INT8, Type::TEXT],
        )
        .await
        .expect("copy starts");
    copy.write(&[&1_i64, &"one"]).await.expect("row written");
    drop(copy);

    assert!(tx.is_aborted());
    assert!(matches!(tx.commit().await, Err(Error::TransactionAborted)));
    assert_eq!(count(&f.pool).await, 0);
    let pool = f.pool.clone();
    assert!(eventually(Duration::from_secs(1), || pool.stats().in_use == 0).await);
    assert_eq!(f.pool.stats().discarded, 0);
}

#[tokio::test]
async fn a_transaction_within_a_limit_has_the_server_cancel_a_longer_statement() {
    let f = fixture().await;
    let before = f.pool.stats();
    let mut tx = f
        .pool
        .begin_within(Duration::from_millis(200))
        .await
        .expect("begin");
    let shown: String = tx
        .fetch_one("SHOW statement_timeout", &[])
        .await
        .expect("shown")
        .get(0);
    assert_eq!(shown, "200ms");
    let error = tx
        .execute("SELECT pg_sleep(5)", &[])
        .await
        .expect_err("cancelled by the server");
    assert_eq!(error.code(), Some(&SqlState::QUERY_CANCELED), "{error}");
    assert!(tx.is_aborted());
    tx.rollback().await.expect("rolled back");
    // BEGIN with its setting in one call, SHOW, the statement, ROLLBACK.
    assert_eq!(delta(before, f.pool.stats()).calls, 4);
    // The setting ended with the transaction.
    let shown: String = f
        .pool
        .fetch_one("SHOW statement_timeout", &[])
        .await
        .expect("shown")
        .get(0);
    assert_ne!(shown, "200ms");
}

#[tokio::test]
async fn a_query_within_a_limit_runs_in_one_call_and_the_server_cancels_it_past_the_limit() {
    // One connection: every call below gets the same session.
    let f = fixture_with(pool_config(1), fast_retry(1)).await;
    let before = f.pool.stats();
    let limit = Duration::from_millis(200);
    let rows = f
        .pool
        .fetch_all_within(limit, "SELECT current_setting('statement_timeout')", &[])
        .await
        .expect("rows");
    assert_eq!(rows[0].get::<_, String>(0), "200ms");
    let error = f
        .pool
        .fetch_all_within(limit, "SELECT pg_sleep(5)", &[])
        .await
        .expect_err("cancelled by the server");
    assert_eq!(error.code(), Some(&SqlState::QUERY_CANCELED), "{error}");
    assert_eq!(delta(before, f.pool.stats()).calls, 2);
    // The session is outside any transaction, with its own setting again.
    let shown: String = f
        .pool
        .fetch_one("SHOW statement_timeout", &[])
        .await
        .expect("shown")
        .get(0);
    assert_ne!(shown, "200ms");
}
