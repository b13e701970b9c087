//! The schema runner on an empty database: fresh apply, re-run, changed
//! files, newer databases, failing files, concurrent runners.

use std::path::{Path, PathBuf};

use bigbrotr_brotr::{apply_schema, Brotr, Error, Migration, SchemaReport};
use bigbrotr_config::BrotrConfig;
use bigbrotr_pool::{ConnectionPool, Type};
use bigbrotr_test_support::{workspace_root, TestDb};
use tempfile::TempDir;

use crate::support::{count, pool_on, IMPLEMENTATIONS};

/// A database with nothing in it, and a pool on it.
async fn empty_database() -> (TestDb, ConnectionPool) {
    let db = TestDb::empty("bigbrotr", 1).await.expect("test database");
    let pool = pool_on(&db, 4).await;
    (db, pool)
}

/// A copy of the SQL folder of `implementation`, to alter freely.
fn sql_copy(implementation: &str) -> TempDir {
    let source = workspace_root()
        .join("implementations")
        .join(implementation)
        .join("sql");
    let dir = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(&source).expect("sql folder") {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    dir
}

/// The versions of the shipped files in `dir`: 1..=n.
fn shipped(dir: &std::path::Path) -> Vec<i32> {
    bigbrotr_brotr::read_schema_dir(dir)
        .unwrap()
        .iter()
        .map(|f| f.version)
        .collect()
}

/// The version after the shipped ones, and its file-name prefix.
fn next(dir: &std::path::Path) -> (i32, String) {
    let n = shipped(dir).len() as i32 + 1;
    (n, format!("{n:03}_"))
}

fn versions(migrations: &[Migration]) -> Vec<i32> {
    migrations.iter().map(|m| m.version).collect()
}

fn file(dir: &Path, prefix: &str) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no file {prefix}*"))
}

#[tokio::test]
async fn a_fresh_database_gets_every_file_and_a_rerun_applies_nothing() {
    for imp in IMPLEMENTATIONS {
        let (_db, pool) = empty_database().await;
        let dir = sql_copy(imp);

        let first = apply_schema(&pool, dir.path()).await.unwrap();
        assert_eq!(versions(&first.applied), shipped(dir.path()), "{imp}");
        assert!(first.already_present.is_empty(), "{imp}");
        assert_eq!(first.version(), shipped(dir.path()).len() as i32);
        assert_eq!(first.applied[0].name, "tables");

        let rows = pool
            .fetch_all(
                "SELECT version, name, octet_length(checksum), applied_at FROM schema_migrations \
                 ORDER BY version",
                &[],
            )
            .await
            .unwrap();
        let recorded: Vec<(i32, String, i32)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let expected: Vec<(i32, String, i32)> = bigbrotr_brotr::read_schema_dir(dir.path())
            .unwrap()
            .iter()
            .map(|f| (f.version, f.name.clone(), 32))
            .collect();
        assert_eq!(recorded, expected, "{imp}");

        let again = apply_schema(&pool, dir.path()).await.unwrap();
        assert!(again.applied.is_empty(), "{imp}");
        assert_eq!(
            versions(&again.already_present),
            shipped(dir.path()),
            "{imp}"
        );
        assert_eq!(
            count(&pool, "schema_migrations").await,
            shipped(dir.path()).len() as i64
        );

        // The schema it made is one the archive works on.
        let brotr = Brotr::new(pool.clone(), BrotrConfig::default()).unwrap();
        let relay = brotr.insert_relay("wss://a.example", 1).await.unwrap();
        assert!(relay.get() > 0);
    }
}

#[tokio::test]
async fn a_changed_file_is_refused_and_nothing_is_applied() {
    let (_db, pool) = empty_database().await;
    let dir = sql_copy("bigbrotr");
    apply_schema(&pool, dir.path()).await.unwrap();

    let functions = file(dir.path(), "002_");
    let mut text = std::fs::read_to_string(&functions).unwrap();
    text.push_str("\n-- edited after it was applied\n");
    std::fs::write(&functions, text).unwrap();
    let n = shipped(dir.path()).len() as i64;
    std::fs::write(
        dir.path().join(format!("{}more.sql", next(dir.path()).1)),
        "CREATE TABLE more (x int);",
    )
    .unwrap();

    let result = apply_schema(&pool, dir.path()).await;
    let Err(Error::SchemaChecksumMismatch {
        version,
        name,
        file,
    }) = result
    else {
        panic!("expected SchemaChecksumMismatch, got {result:?}");
    };
    assert_eq!((version, name.as_str()), (2, "functions"));
    assert_eq!(file, functions);
    assert_eq!(count(&pool, "schema_migrations").await, n);
    let more: bool = pool
        .fetch_one("SELECT to_regclass('more') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!more, "the new file must not be applied");
}

#[tokio::test]
async fn a_database_newer_than_the_files_is_refused() {
    let (_db, pool) = empty_database().await;
    let dir = sql_copy("bigbrotr");
    apply_schema(&pool, dir.path()).await.unwrap();
    let n = shipped(dir.path()).len() as i32;
    std::fs::remove_file(file(dir.path(), &format!("{n:03}_"))).unwrap();

    let result = apply_schema(&pool, dir.path()).await;
    assert!(
        matches!(
            result,
            Err(Error::SchemaTooNew {
                database_version,
                known_version,
            }) if database_version == n && known_version == n - 1
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_new_file_is_applied_after_the_present_ones() {
    let (_db, pool) = empty_database().await;
    let dir = sql_copy("bigbrotr");
    apply_schema(&pool, dir.path()).await.unwrap();
    let present = shipped(dir.path());
    let (n, prefix) = next(dir.path());
    std::fs::write(
        dir.path().join(format!("{prefix}notes.sql")),
        "CREATE TABLE notes (x int);\nINSERT INTO notes VALUES (1), (2);\n",
    )
    .unwrap();
    let report = apply_schema(&pool, dir.path()).await.unwrap();
    assert_eq!(versions(&report.applied), [n]);
    assert_eq!(versions(&report.already_present), present);
    assert_eq!(count(&pool, "notes").await, 2);
}

#[tokio::test]
async fn a_failing_file_is_rolled_back_whole_and_not_recorded() {
    let (_db, pool) = empty_database().await;
    let dir = sql_copy("bigbrotr");
    let present = shipped(dir.path()).len() as i64;
    let (n, prefix) = next(dir.path());
    let broken = format!("{prefix}broken.sql");
    std::fs::write(
        dir.path().join(&broken),
        "CREATE TABLE half (x int);\nSELECT no_such_function();\n",
    )
    .unwrap();
    let result = apply_schema(&pool, dir.path()).await;
    let Err(Error::SchemaApply { file, .. }) = result else {
        panic!("expected SchemaApply, got {result:?}");
    };
    assert!(file.ends_with(&broken));
    assert_eq!(count(&pool, "schema_migrations").await, present);
    let half: bool = pool
        .fetch_one("SELECT to_regclass('half') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!half);

    std::fs::write(dir.path().join(&broken), "CREATE TABLE half (x int);\n").unwrap();
    let report = apply_schema(&pool, dir.path()).await.unwrap();
    assert_eq!(versions(&report.applied), [n]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runners_apply_each_file_exactly_once() {
    let (db, pool) = empty_database().await;
    let other = pool_on(&db, 2).await;
    let dir = sql_copy("bigbrotr");
    let (a, b) = tokio::join!(
        apply_schema(&pool, dir.path()),
        apply_schema(&other, dir.path())
    );
    let (a, b): (SchemaReport, SchemaReport) = (a.unwrap(), b.unwrap());
    let mut applied = versions(&a.applied);
    applied.extend(versions(&b.applied));
    applied.sort_unstable();
    let all = shipped(dir.path());
    assert_eq!(applied, all);
    assert_eq!(a.version(), all.len() as i32);
    assert_eq!(b.version(), all.len() as i32);
    let tables: i64 = pool
        .fetch_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = $1",
            &[(&"events", Type::TEXT)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 1);
}
