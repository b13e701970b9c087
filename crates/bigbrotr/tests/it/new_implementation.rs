//! `docs/new-implementation.md`, done: `implementations/bigbrotr` copied to
//! `<tmp>/implementations/mybrotr`, its YAML and SQL edited, then the real
//! `bigbrotr` binary with `--root <tmp> -i mybrotr` for `config check`,
//! `db init`, `import` and `run monitor --once`, on a fresh database, against
//! a relay running in this process.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use bigbrotr_test_support::{corpus_dir, workspace_root, TestDb};
use nostr::{EventBuilder, JsonUtil as _, Keys};
use nostr_relay_builder::prelude::{RateLimit, RelayBuilder};
use nostr_relay_builder::LocalRelay;

/// The new implementation's name.
const NAME: &str = "mybrotr";

/// Events imported.
const EVENTS: usize = 40;

/// The SQL file the guide adds.
const CUSTOM_SQL: &str = "\
-- mybrotr: a note per relay, kept by hand, and the events seen on each relay.
ALTER TABLE relays ADD COLUMN note text;
COMMENT ON COLUMN relays.note IS 'What the operator knows about the relay.';

CREATE INDEX relay_metadata_generated_at_idx ON relay_metadata (generated_at);

CREATE VIEW relay_event_counts AS
SELECT r.url, count(er.event_id) AS events
FROM relays AS r
LEFT JOIN events_relays AS er ON er.relay_id = r.id
GROUP BY r.url;
";

/// Copies the folder `from` to `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Replaces the one occurrence of `from` in the file at `path` by `to`.
fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(
        text.matches(from).count(),
        1,
        "`{from}` once in {}",
        path.display()
    );
    std::fs::write(path, text.replace(from, to)).unwrap();
}

/// Runs `bigbrotr --root <root> -i mybrotr ARGS` on the database `db` and
/// waits for it, with a time limit.
async fn bigbrotr(root: &Path, db: &TestDb, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bigbrotr"));
    command
        .arg("--root")
        .arg(root)
        .args(["-i", NAME])
        .args(args)
        .env("DB_NAME", db.name())
        .env("LOG_LEVEL", "info")
        // Not the key of whoever runs the tests.
        .env_remove("MONITOR_PRIVATE_KEY")
        .stdin(Stdio::null());
    let run = tokio::task::spawn_blocking(move || command.output());
    tokio::time::timeout(std::time::Duration::from_secs(120), run)
        .await
        .unwrap_or_else(|_| panic!("bigbrotr {args:?} did not end within 2 minutes"))
        .unwrap()
        .expect("bigbrotr runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Asserts that `output` is a success, showing what it printed otherwise.
fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        output.status,
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn scalar(db: &TestDb, sql: &str) -> i64 {
    db.client()
        .await
        .unwrap()
        .query_typed(sql, &[])
        .await
        .unwrap()[0]
        .get(0)
}

/// `EVENTS` NIP-01 events as JSON lines: the first of the real corpus, or
/// events signed here when the corpus is not there.
fn events_jsonl() -> String {
    match corpus_dir() {
        Some(dir) => std::fs::read_to_string(dir.join("real-events.jsonl"))
            .unwrap()
            .lines()
            .take(EVENTS)
            .map(|line| format!("{line}\n"))
            .collect(),
        None => {
            let keys = Keys::generate();
            (0..EVENTS)
                .map(|i| {
                    let event = EventBuilder::text_note(format!("note {i}"))
                        .sign_with_keys(&keys)
                        .unwrap();
                    format!("{}\n", event.as_json())
                })
                .collect()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_and_edited_implementation_is_checked_created_filled_and_monitored() {
    // 1. Copy (data/seed_relays.txt with the rest: step 5).
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("implementations").join(NAME);
    copy_dir(&workspace_root().join("implementations/bigbrotr"), &dir);
    assert!(dir.join("data/seed_relays.txt").is_file());

    // 2. A database of its own, empty: `db init` makes the schema.
    let db = TestDb::empty("bigbrotr", 2).await.expect("test database");

    // 3. The YAML. A bad value first: `config check` names the copy's file
    // and the key, so the copy is what is read.
    let brotr_yaml = dir.join("config/core/brotr.yaml");
    edit(&brotr_yaml, "  batch_size: 1000", "  batch_size: 0");
    let check = bigbrotr(root.path(), &db, &["config", "check"]).await;
    assert_eq!(check.status.code(), Some(1));
    let out = stdout(&check);
    assert!(
        out.contains(&format!(
            "problem core/brotr.yaml: invalid configuration in {}:",
            brotr_yaml.display()
        )),
        "{out}"
    );
    assert!(out.contains("  brotr.batch_size: must be"), "{out}");
    assert!(
        String::from_utf8_lossy(&check.stderr)
            .contains(&format!("configuration files of `{NAME}` have problems")),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    edit(&brotr_yaml, "  batch_size: 0", "  batch_size: 250");
    // Any free port for /metrics, and no long wait for the NIP-11 document
    // the in-process relay does not serve.
    edit(
        &dir.join("config/core/runtime.yaml"),
        "listen: 127.0.0.1:9109",
        "listen: 127.0.0.1:0",
    );
    edit(
        &dir.join("config/services/monitor.yaml"),
        "    nip11: 10s",
        "    nip11: 2s",
    );
    // The in-process relay listens on 127.0.0.1, which the shipped egress
    // policy refuses: allow exactly that network.
    edit(
        &dir.join("config/core/egress.yaml"),
        "  allow: []",
        "  allow: [\"127.0.0.1/32\"]",
    );
    let check = bigbrotr(root.path(), &db, &["config", "check"]).await;
    assert_success(&check, "config check");
    let out = stdout(&check);
    let mut expected = String::new();
    for kind in ["core", "services"] {
        let mut files: Vec<String> = std::fs::read_dir(dir.join("config").join(kind))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|file| file.ends_with(".yaml"))
            .collect();
        files.sort();
        for file in files {
            expected.push_str(&format!("ok      {kind}/{file}\n"));
        }
    }
    assert!(expected.contains("ok      core/brotr.yaml\n"), "{expected}");
    assert_eq!(out, expected, "every file of the copy, each ok");

    // 4. The SQL: one more file, after the shipped ones (007_custom.sql
    // when this was written).
    let shipped = bigbrotr_test_support::sql_files(&dir.join("sql"))
        .unwrap()
        .len();
    let version = shipped + 1;
    std::fs::write(
        dir.join("sql").join(format!("{version:03}_custom.sql")),
        CUSTOM_SQL,
    )
    .unwrap();
    let init = bigbrotr(root.path(), &db, &["db", "init"]).await;
    assert_success(&init, "db init");
    assert_eq!(
        stdout(&init),
        format!(
            "schema version {version} of `{NAME}`: {version} file(s) applied, 0 already present\n"
        )
    );
    let again = bigbrotr(root.path(), &db, &["db", "init"]).await;
    assert_success(&again, "db init again");
    assert_eq!(
        stdout(&again),
        format!(
            "schema version {version} of `{NAME}`: 0 file(s) applied, {version} already present\n"
        )
    );
    assert_eq!(
        scalar(
            &db,
            &format!(
                "SELECT count(*) FROM schema_migrations WHERE version = {version} AND name = 'custom'"
            )
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'relay_metadata_generated_at_idx'"
        )
        .await,
        1
    );

    // 6. Run: import, with provenance to a relay running here, which the monitor
    // then checks (the seed relays are not recorded: nothing public is
    // contacted).
    let relay = LocalRelay::new(RelayBuilder::default().rate_limit(RateLimit {
        max_reqs: 500,
        notes_per_minute: 10_000,
    }));
    relay.run().await.expect("the relay starts");
    let url = relay.url().await.as_str_without_trailing_slash().to_owned();
    let events = root.path().join("events.jsonl");
    std::fs::write(&events, events_jsonl()).unwrap();
    let events = events.to_str().unwrap().to_owned();
    let import = bigbrotr(root.path(), &db, &["import", &events, "--relay", &url]).await;
    assert_success(&import, "import");
    assert_eq!(
        stdout(&import),
        format!(
            "read {EVENTS}, stored {EVENTS}, duplicates 0, provenance rows {EVENTS}, rejected 0\n"
        )
    );
    let expected = i64::try_from(EVENTS).unwrap();
    assert_eq!(scalar(&db, "SELECT count(*) FROM events").await, expected);
    assert_eq!(
        scalar(
            &db,
            &format!("SELECT events FROM relay_event_counts WHERE url = '{url}'")
        )
        .await,
        expected,
        "the custom view sees the import"
    );
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM relays WHERE note IS NULL").await,
        1,
        "insert_relays works with the extra column"
    );

    let monitor = bigbrotr(root.path(), &db, &["run", "monitor", "--once"]).await;
    assert_success(&monitor, "run monitor --once");
    assert_eq!(
        stdout(&monitor),
        "monitor: stopped after 1 iteration(s), 0 failed\n"
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM relay_metadata_latest \
             WHERE connected AND (nip66_data->>'readable')::boolean \
             AND (nip66_data->>'writable')::boolean"
        )
        .await,
        1,
        "{}",
        String::from_utf8_lossy(&monitor.stderr)
    );
    assert_eq!(scalar(&db, "SELECT count(*) FROM relay_metadata").await, 1);
    relay.shutdown();
}
