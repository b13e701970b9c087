//! Services end to end, in process: `bigbrotr::run_services` on each
//! shipped implementation, from its files to the rows it stores.

use std::time::Duration;

use bigbrotr_config::{Env, Implementation};
use bigbrotr_service_runtime::RunOptions;
use bigbrotr_test_support::{workspace_root, TestDb};

/// Run in-process: no signal handlers, no global logging.
const IN_PROCESS: RunOptions = RunOptions {
    once: true,
    signals: false,
    logging: false,
};

async fn empty_database(implementation: &str) -> TestDb {
    TestDb::empty(implementation, 2)
        .await
        .expect("test database")
}

/// The environment of a run of `implementation` on `db`: the shipped pool file reads
/// `DB_NAME`, the endpoint takes any free port.
fn env_for(db: &TestDb, implementation: &Implementation) -> Env {
    let mut pairs: Vec<(String, String)> = Env::from_process()
        .with_dotenv(&implementation.dotenv_path())
        .expect("a readable .env")
        .iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    pairs.push(("DB_NAME".into(), db.name().into()));
    pairs.push((
        "BIGBROTR_RUNTIME__HTTP__LISTEN".into(),
        "127.0.0.1:0".into(),
    ));
    Env::from_pairs(pairs)
}

async fn relay_urls(db: &TestDb) -> Vec<String> {
    db.client()
        .await
        .unwrap()
        .query_typed("SELECT url FROM relays ORDER BY url", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// The URLs of a shipped seed file, as the initializer stores them.
fn shipped_seeds(implementation: &Implementation) -> Vec<String> {
    let text = std::fs::read_to_string(implementation.data_dir().join("seed_relays.txt")).unwrap();
    let mut urls: Vec<String> = bigbrotr_initializer::parse_seed_list(&text)
        .relays
        .into_iter()
        .map(|(_, url)| url)
        .collect();
    urls.sort();
    urls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_initializer_of_each_shipped_implementation_stores_its_seed_relays_once() {
    for name in ["bigbrotr", "lilbrotr"] {
        let implementation = Implementation::open(&workspace_root(), name).unwrap();
        let seeds = shipped_seeds(&implementation);
        assert_eq!(
            seeds.len(),
            30,
            "{name}: every shipped seed line is a valid, distinct relay"
        );
        let db = empty_database(name).await;
        let env = env_for(&db, &implementation);
        for round in 1..=2 {
            let mut out = Vec::new();
            tokio::time::timeout(
                Duration::from_secs(60),
                bigbrotr::run_services(
                    &implementation,
                    &env,
                    &["initializer".to_owned()],
                    IN_PROCESS,
                    &mut out,
                ),
            )
            .await
            .expect("the run ends")
            .unwrap_or_else(|error| panic!("{name} round {round}: {error:#}"));
            assert_eq!(
                String::from_utf8(out).unwrap(),
                "initializer: stopped after 1 iteration(s), 0 failed\n"
            );
            assert_eq!(relay_urls(&db).await, seeds, "{name} round {round}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_failing_makes_the_run_fail_with_its_name() {
    let root = tempfile::tempdir().unwrap();
    let shipped = workspace_root().join("implementations/bigbrotr");
    let dir = root.path().join("implementations/broken");
    for folder in ["config/core", "config/services", "sql", "data"] {
        std::fs::create_dir_all(dir.join(folder)).unwrap();
    }
    for file in [
        "config/core/pool.yaml",
        "config/core/brotr.yaml",
        "config/core/runtime.yaml",
    ] {
        std::fs::copy(shipped.join(file), dir.join(file)).unwrap();
    }
    for entry in std::fs::read_dir(shipped.join("sql")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join("sql").join(path.file_name().unwrap())).unwrap();
    }
    // No seed file: the initializer fails after the schema.
    std::fs::write(
        dir.join("config/services/initializer.yaml"),
        "initializer:\n  seed_file: absent.txt\n",
    )
    .unwrap();
    let implementation = Implementation::open(root.path(), "broken").unwrap();
    let db = empty_database("bigbrotr").await;
    let mut out = Vec::new();
    let error = bigbrotr::run_services(
        &implementation,
        &env_for(&db, &implementation),
        &["initializer".to_owned()],
        IN_PROCESS,
        &mut out,
    )
    .await
    .unwrap_err();
    let error = error.to_string();
    assert!(
        error.starts_with("1 of 1 services failed: initializer (reading the seed file "),
        "{error}"
    );
    let printed = String::from_utf8(out).unwrap();
    assert!(
        printed.starts_with(
            "initializer: failed after 1 iteration(s), 1 failed: reading the seed file "
        ),
        "{printed}"
    );
    assert!(printed.contains("absent.txt"), "{printed}");
    assert!(relay_urls(&db).await.is_empty());
}
