//! One-call statements: exact values, typed parameters, row counts, SQL
//! errors, typed columns.

use bigbrotr_pool::tokio_postgres::error::SqlState;
use bigbrotr_pool::{column, Error, Type};

use crate::support::{delta, fixture, Delta};

const CREATE: &str = "CREATE TABLE item (
    id int8 PRIMARY KEY,
    name text NOT NULL,
    payload bytea NOT NULL,
    tags text[] NOT NULL DEFAULT '{}'
)";

#[tokio::test]
async fn execute_and_fetch_return_exact_values_with_typed_array_parameters() {
    let f = fixture().await;
    f.pool.batch_execute(CREATE).await.expect("create");
    let ids: Vec<i64> = vec![3, 1, 2];
    let names: Vec<String> = vec!["three".into(), "one".into(), "two".into()];
    let payloads: Vec<Vec<u8>> = vec![vec![3, 0, 255], vec![], vec![0x00]];

    let inserted = f
        .pool
        .execute(
            "INSERT INTO item (id, name, payload) \
             SELECT * FROM unnest($1::int8[], $2::text[], $3::bytea[])",
            &[
                (&ids, Type::INT8_ARRAY),
                (&names, Type::TEXT_ARRAY),
                (&payloads, Type::BYTEA_ARRAY),
            ],
        )
        .await
        .expect("insert");
    assert_eq!(inserted, 3);

    let rows = f
        .pool
        .fetch_all("SELECT id, name, payload FROM item ORDER BY id", &[])
        .await
        .expect("fetch_all");
    let got: Vec<(i64, String, Vec<u8>)> = rows
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    assert_eq!(
        got,
        [
            (1, "one".to_owned(), vec![]),
            (2, "two".to_owned(), vec![0x00]),
            (3, "three".to_owned(), vec![3, 0, 255]),
        ]
    );

    let row = f
        .pool
        .fetch_one(
            "SELECT name FROM item WHERE id = $1",
            &[(&2_i64, Type::INT8)],
        )
        .await
        .expect("fetch_one");
    assert_eq!(row.get::<_, String>(0), "two");

    let none = f
        .pool
        .fetch_optional(
            "SELECT name FROM item WHERE id = $1",
            &[(&9_i64, Type::INT8)],
        )
        .await
        .expect("fetch_optional");
    assert!(none.is_none());
    let some = f
        .pool
        .fetch_optional(
            "SELECT payload FROM item WHERE id = $1",
            &[(&3_i64, Type::INT8)],
        )
        .await
        .expect("fetch_optional")
        .expect("a row");
    assert_eq!(some.get::<_, Vec<u8>>(0), [3, 0, 255]);
}

#[tokio::test]
async fn arrays_of_bytea_int8_and_text_round_trip_exactly() {
    let f = fixture().await;
    let blobs: Vec<Vec<u8>> = vec![vec![], vec![0; 32], (0..=255).collect()];
    let numbers: Vec<i64> = vec![i64::MIN, -1, 0, 1, i64::MAX];
    let texts: Vec<String> = vec![
        String::new(),
        "ünïcödé".into(),
        "with \"quotes\", commas {}".into(),
    ];
    let empty: Vec<i64> = Vec::new();

    let row = f
        .pool
        .fetch_one(
            "SELECT $1::bytea[], $2::int8[], $3::text[], $4::int8[], cardinality($4::int8[])",
            &[
                (&blobs, Type::BYTEA_ARRAY),
                (&numbers, Type::INT8_ARRAY),
                (&texts, Type::TEXT_ARRAY),
                (&empty, Type::INT8_ARRAY),
            ],
        )
        .await
        .expect("round trip");

    assert_eq!(row.get::<_, Vec<Vec<u8>>>(0), blobs);
    assert_eq!(row.get::<_, Vec<i64>>(1), numbers);
    assert_eq!(row.get::<_, Vec<String>>(2), texts);
    assert_eq!(row.get::<_, Vec<i64>>(3), empty);
    assert_eq!(row.get::<_, i32>(4), 0);
}

#[tokio::test]
async fn fetch_one_wants_exactly_one_row_and_fetch_optional_at_most_one() {
    let f = fixture().await;
    let before = f.pool.stats();

    let none = f.pool.fetch_one("SELECT 1 WHERE false", &[]).await;
    let two = f
        .pool
        .fetch_one("SELECT * FROM generate_series(1, 2)", &[])
        .await;
    let three = f
        .pool
        .fetch_optional("SELECT * FROM generate_series(1, 3)", &[])
        .await;

    assert!(
        matches!(
            none,
            Err(Error::RowCount {
                what: "fetch_one",
                expected: "exactly one",
                found: 0,
                ..
            })
        ),
        "{none:?}"
    );
    assert!(
        matches!(two, Err(Error::RowCount { found: 2, .. })),
        "{two:?}"
    );
    assert!(
        matches!(
            three,
            Err(Error::RowCount {
                what: "fetch_optional",
                expected: "at most one",
                found: 3,
                ..
            })
        ),
        "{three:?}"
    );
    assert_eq!(
        delta(before, f.pool.stats()),
        Delta {
            calls: 3,
            errors: 3,
            ..Delta::default()
        }
    );
}

#[tokio::test]
async fn an_sql_error_is_a_query_error_with_its_sqlstate_and_is_not_retried() {
    let f = fixture().await;
    f.pool.batch_execute(CREATE).await.expect("create");
    let insert = "INSERT INTO item (id, name, payload) VALUES ($1, 'x', '\\x00')";
    f.pool
        .execute(insert, &[(&1_i64, Type::INT8)])
        .await
        .expect("first insert");
    let before = f.pool.stats();

    let duplicate = f
        .pool
        .execute_idempotent(insert, &[(&1_i64, Type::INT8)])
        .await
        .expect_err("duplicate key");
    let syntax = f
        .pool
        .fetch_all("SELEKT nothing", &[])
        .await
        .expect_err("syntax error");

    let Error::Query {
        what, statement, ..
    } = &duplicate
    else {
        panic!("expected Query, got {duplicate:?}");
    };
    assert_eq!(*what, "execute");
    assert!(statement.starts_with("INSERT INTO item"));
    assert_eq!(duplicate.code(), Some(&SqlState::UNIQUE_VIOLATION));
    assert!(!duplicate.is_transient());
    assert_eq!(syntax.code(), Some(&SqlState::SYNTAX_ERROR));
    assert!(matches!(
        syntax,
        Error::Query {
            what: "fetch_all",
            ..
        }
    ));
    // SQL errors leave the connection usable: nothing is discarded.
    assert_eq!(
        delta(before, f.pool.stats()),
        Delta {
            calls: 2,
            errors: 2,
            ..Delta::default()
        }
    );
    let count: i64 = f
        .pool
        .fetch_one("SELECT count(*) FROM item", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(count, 1);
}

#[tokio::test]
async fn a_column_is_read_as_its_type_or_is_a_column_error_naming_it() {
    let f = fixture().await;
    let row = f
        .pool
        .fetch_one("SELECT 7::int8 AS n, NULL::text AS absent", &[])
        .await
        .expect("fetch_one");

    assert_eq!(column::<i64>(&row, 0, "reading", "n").expect("n"), 7);
    assert_eq!(
        column::<Option<String>>(&row, 1, "reading", "absent").expect("absent"),
        None
    );
    for (error, name) in [
        (
            column::<i32>(&row, 0, "reading", "n").expect_err("int8 as i32"),
            "n",
        ),
        (
            column::<String>(&row, 1, "reading", "absent").expect_err("NULL"),
            "absent",
        ),
        (
            column::<i64>(&row, 2, "reading", "third").expect_err("no third"),
            "third",
        ),
    ] {
        assert!(
            matches!(&error, Error::Column { what: "reading", column, .. } if *column == name),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            format!("reading: column `{name}` could not be read")
        );
        assert!(std::error::Error::source(&error).is_some());
        assert!(!error.is_transient());
        assert!(error.code().is_none());
    }
}

#[tokio::test]
async fn batch_execute_runs_a_whole_script() {
    let f = fixture().await;
    f.pool
        .batch_execute(&format!(
            "{CREATE}; INSERT INTO item (id, name, payload) VALUES (1, 'a', ''), (2, 'b', '');
             UPDATE item SET tags = ARRAY['x', 'y'] WHERE id = 2;"
        ))
        .await
        .expect("script");
    let row = f
        .pool
        .fetch_one(
            "SELECT count(*), (SELECT tags FROM item WHERE id = 2) FROM item",
            &[],
        )
        .await
        .expect("check");
    assert_eq!(row.get::<_, i64>(0), 2);
    assert_eq!(row.get::<_, Vec<String>>(1), ["x", "y"]);
}

#[tokio::test]
async fn a_script_failing_inside_its_own_transaction_leaves_no_connection_aborted() {
    // One connection: the next call would get the same session.
    let f = crate::support::fixture_with(
        crate::support::pool_config(1),
        crate::support::fast_retry(1),
    )
    .await;
    let error = f
        .pool
        .batch_execute("BEGIN; SELECT 1 / 0; COMMIT")
        .await
        .expect_err("division by zero");
    assert_eq!(error.code(), Some(&SqlState::DIVISION_BY_ZERO));
    let one: i32 = f
        .pool
        .fetch_one("SELECT 1", &[])
        .await
        .expect("a session outside any transaction")
        .get(0);
    assert_eq!(one, 1);
}

#[tokio::test]
async fn a_pooled_connection_runs_statements_and_goes_back_to_the_pool() {
    let f = fixture().await;
    let mut conn = f.pool.get_connection().await.expect("connection");
    assert_eq!(f.pool.stats().in_use, 1);

    conn.batch_execute(CREATE).await.expect("create");
    let n = conn
        .execute(
            "INSERT INTO item (id, name, payload) VALUES ($1, $2, $3)",
            &[
                (&5_i64, Type::INT8),
                (&"five", Type::TEXT),
                (&vec![5_u8], Type::BYTEA),
            ],
        )
        .await
        .expect("insert");
    let row = conn
        .fetch_one("SELECT name FROM item", &[])
        .await
        .expect("fetch");
    assert_eq!((n, row.get::<_, String>(0)), (1, "five".to_owned()));
    assert!(!conn.is_discarded());

    drop(conn);
    let stats = f.pool.stats();
    assert_eq!(
        (stats.in_use, stats.idle, stats.discarded),
        (0, stats.size, 0)
    );
}
