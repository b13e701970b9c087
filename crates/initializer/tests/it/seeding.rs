//! The initializer on an empty database: the schema first, then exact rows
//! from a fixture seed file, and nothing new the second time.

use std::path::Path;
use std::time::Duration;

use bigbrotr_brotr::Brotr;
use bigbrotr_config::{BrotrConfig, Implementation, PoolConfig, RetryConfig};
use bigbrotr_initializer::{Initializer, InitializerFile, InvalidLine};
use bigbrotr_pool::ConnectionPool;
use bigbrotr_service_runtime::{Runtime, RuntimeConfig, State};
use bigbrotr_test_support::{workspace_root, TestDb};
use tempfile::TempDir;

const SEEDS: &str = "\
# A fixture seed file.

wss://relay.one.example
wss://relay.two.example/
WSS://Relay.One.Example:443        # line 3 again, written otherwise
ws://relay.three.example:8080/nostr?x=1#top
http://not-a-relay.example
  wss://relay.one.example          # line 3 once more
not a url at all
ws://exampleonionaddressxyz.onion
wss://
";

/// An implementation `fixture` with the SQL of `implementation` and the
/// fixture seed file as `data/seeds.txt`.
fn fixture(implementation: &str) -> (TempDir, Implementation) {
    let root = tempfile::tempdir().expect("a temporary folder");
    let dir = root.path().join("implementations/fixture");
    std::fs::create_dir_all(dir.join("sql")).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let sql = workspace_root()
        .join("implementations")
        .join(implementation)
        .join("sql");
    for entry in std::fs::read_dir(sql).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join("sql").join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.join("data/seeds.txt"), SEEDS).unwrap();
    let opened = Implementation::open(root.path(), "fixture").expect("the fixture");
    (root, opened)
}

/// A database with nothing in it, and a connected archive on it.
async fn empty_database() -> (TestDb, Brotr) {
    let db = TestDb::empty("bigbrotr", 2).await.expect("test database");
    let pool = ConnectionPool::new(
        &db.database_config(),
        &PoolConfig::default(),
        &RetryConfig::default(),
    )
    .unwrap();
    pool.connect().await.unwrap();
    (db, Brotr::new(pool, BrotrConfig::default()).unwrap())
}

fn initializer_file(seed_file: &str) -> InitializerFile {
    let mut file = InitializerFile::default();
    file.initializer.seed_file = seed_file.to_owned();
    file.initializer.batch_size = 2;
    file
}

async fn relays(db: &TestDb) -> Vec<(String, String)> {
    let client = db.client().await.unwrap();
    client
        .query_typed("SELECT url, network FROM relays ORDER BY url", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

async fn run_once(
    implementation: &Implementation,
    brotr: &Brotr,
    file: InitializerFile,
) -> bigbrotr_service_runtime::ServiceStatus {
    let settings = RuntimeConfig {
        shutdown_grace: Duration::from_secs(5),
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::new(implementation.clone(), brotr.clone(), settings);
    let handle = runtime.start::<Initializer>(file);
    runtime.wait().await;
    // Shutting down closes the pool: each run gets a clone of a fresh one.
    let status = handle.status();
    std::mem::forget(runtime);
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_is_applied_then_valid_relays_are_stored_once_each() {
    for implementation in ["bigbrotr", "lilbrotr"] {
        let (_root, fixture) = fixture(implementation);
        let (db, brotr) = empty_database().await;

        let status = run_once(&fixture, &brotr, initializer_file("seeds.txt")).await;
        assert_eq!(status.state, State::Stopped, "{status:?}");
        assert_eq!((status.iterations, status.errors), (1, 0));
        let expected = vec![
            (
                "ws://exampleonionaddressxyz.onion".to_owned(),
                "tor".to_owned(),
            ),
            (
                "ws://relay.three.example:8080/nostr".to_owned(),
                "clearnet".to_owned(),
            ),
            ("wss://relay.one.example".to_owned(), "clearnet".to_owned()),
            ("wss://relay.two.example".to_owned(), "clearnet".to_owned()),
        ];
        assert_eq!(relays(&db).await, expected, "{implementation}");
        let migrations: i64 = db
            .client()
            .await
            .unwrap()
            .query_typed("SELECT count(*) FROM schema_migrations", &[])
            .await
            .unwrap()[0]
            .get(0);
        let files = bigbrotr_test_support::sql_files(&fixture.sql_dir()).unwrap();
        assert_eq!(
            usize::try_from(migrations).unwrap(),
            files.len(),
            "{implementation}: every SQL file recorded"
        );

        // Again: nothing new.
        let again = run_once(&fixture, &brotr, initializer_file("seeds.txt")).await;
        assert_eq!(again.state, State::Stopped);
        assert_eq!(relays(&db).await, expected, "{implementation}");
        brotr.pool().disconnect(Duration::from_secs(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_lines_are_reported_with_their_number_and_reason() {
    let (_root, fixture) = fixture("bigbrotr");
    let (db, brotr) = empty_database().await;
    let runtime = Runtime::new(fixture.clone(), brotr.clone(), RuntimeConfig::default());
    let ctx = bigbrotr_service_runtime::ServiceContext::new(
        "initializer",
        initializer_file("seeds.txt"),
        brotr.clone(),
        fixture.clone(),
        runtime.metrics().for_service("initializer"),
        bigbrotr_service_runtime::StatusCell::new("initializer"),
    );
    let initializer = <Initializer as bigbrotr_service_runtime::Service>::build(&ctx).unwrap();
    assert_eq!(
        initializer.seed_file(),
        fixture.data_dir().join("seeds.txt")
    );
    let cancel = tokio_util_token();
    let report = initializer.initialize(&ctx, &cancel).await.unwrap();
    assert_eq!((report.valid, report.stored, report.duplicates), (4, 4, 2));
    let lines: Vec<(usize, &str)> = report
        .invalid
        .iter()
        .map(|InvalidLine { line, text, .. }| (*line, text.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (7, "http://not-a-relay.example"),
            (9, "not a url at all"),
            (11, "wss://")
        ]
    );
    for invalid in &report.invalid {
        assert!(
            invalid
                .reason
                .starts_with("it is not a ws:// or wss:// URL")
                || invalid.reason.starts_with("it has no host"),
            "{invalid}"
        );
    }
    assert_eq!(relays(&db).await.len(), 4);
    let metrics = runtime.metrics().render();
    for expected in [
        "bigbrotr_initializer_relays_seeded_total{service=\"initializer\"} 4\n",
        "bigbrotr_initializer_invalid_lines_total{service=\"initializer\"} 3\n",
        "bigbrotr_initializer_duplicate_lines_total{service=\"initializer\"} 2\n",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected:?} in\n{metrics}"
        );
    }
    brotr.pool().disconnect(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_seed_file_fails_the_service_naming_the_file() {
    let (_root, fixture) = fixture("bigbrotr");
    let (_db, brotr) = empty_database().await;
    let status = run_once(&fixture, &brotr, initializer_file("missing.txt")).await;
    assert_eq!(status.state, State::Failed);
    let error = status.last_error.expect("an error");
    let path = fixture.data_dir().join("missing.txt");
    assert!(
        error.starts_with(&format!("reading the seed file {}: ", path.display())),
        "{error}"
    );
    assert!(Path::new(&path).parent().unwrap().is_dir());
    brotr.pool().disconnect(Duration::from_secs(1)).await;
}

fn tokio_util_token() -> bigbrotr_service_runtime::CancellationToken {
    bigbrotr_service_runtime::CancellationToken::new()
}
