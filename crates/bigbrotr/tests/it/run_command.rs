//! `bigbrotr run`: a one-shot run, SIGTERM during an iteration, a second
//! signal, and configuration errors, on a fresh database through PgBouncer.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use bigbrotr_test_support::{workspace_root, TestDb};

use crate::support::{bigbrotr, output, scalar, signal, wait_with_limit};

/// Relays listed in the shipped seed files.
const SHIPPED_SEEDS: i64 = 30;

/// A database with nothing in it.
async fn empty_database() -> TestDb {
    TestDb::empty("bigbrotr", 4).await.expect("test database")
}

/// Runs `service` of `implementation` once on `db` (round `round` of a test),
/// checks that it ended well after one iteration, and returns its stderr.
fn run_once(db: &TestDb, implementation: &str, service: &str, round: u32) -> String {
    let out = bigbrotr(db, implementation)
        .args(["run", service, "--once"])
        .output()
        .expect("bigbrotr runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{implementation} round {round}: {stderr}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{service}: stopped after 1 iteration(s), 0 failed\n"),
        "{implementation} round {round}"
    );
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_initializer_once_creates_the_schema_seeds_the_shipped_relays_and_exits_0() {
    for implementation in ["bigbrotr", "lilbrotr"] {
        let db = empty_database().await;
        for round in 1..=2 {
            let stderr = run_once(&db, implementation, "initializer", round);
            assert!(stderr.contains("seed relays stored"), "{stderr}");
            assert!(stderr.contains("connection pool closed"), "{stderr}");
            assert_eq!(
                scalar(&db, "SELECT count(*) FROM relays").await,
                SHIPPED_SEEDS,
                "{implementation} round {round}: nothing new the second time"
            );
        }
    }
}

/// `bigbrotr run refresher --once` on each shipped implementation, twice
/// (the first refresh fills the views, the second is concurrent): every
/// statistics view refreshed, the figures of what the archive holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_refresher_once_refreshes_every_statistics_view_of_each_implementation() {
    for implementation in ["bigbrotr", "lilbrotr"] {
        let db = TestDb::with_pool_size(implementation, 2)
            .await
            .expect("test database");
        // Three events of two authors, two of them seen on a second relay.
        db.client()
            .await
            .unwrap()
            .batch_execute(
                "SELECT * FROM insert_relays(ARRAY['wss://a.example', 'wss://b.example'], \
                                             ARRAY['clearnet', 'clearnet'], 1); \
                 SELECT * FROM insert_events(\
                   ARRAY(SELECT sha256(int8send(g)) FROM generate_series(1, 3) AS g), \
                   ARRAY(SELECT sha256(int8send(g % 2)) FROM generate_series(1, 3) AS g), \
                   ARRAY[1700000000, 1700000001, 1700086400]::int8[], ARRAY[1, 0, 1], \
                   array_fill('[]'::jsonb, ARRAY[3]), NULL, array_fill(''::text, ARRAY[3]), NULL, \
                   array_fill(decode(repeat('00', 64), 'hex'), ARRAY[3]), \
                   array_fill((SELECT id FROM relays WHERE url = 'wss://a.example'), ARRAY[3]), \
                   array_fill(100::int8, ARRAY[3])); \
                 SELECT * FROM insert_sightings(\
                   (SELECT id FROM relays WHERE url = 'wss://b.example'), \
                   ARRAY(SELECT sha256(int8send(g)) FROM generate_series(1, 2) AS g), 200)",
            )
            .await
            .expect("the fixture stored");
        for round in 1..=2 {
            let stderr = run_once(&db, implementation, "refresher", round);
            assert!(stderr.contains("refresher cycle done"), "{stderr}");
            assert!(
                stderr.contains("refreshed=12") && stderr.contains("failed=0"),
                "{stderr}"
            );
        }
        assert_eq!(
            scalar(
                &db,
                "SELECT events * 10000 + pubkeys * 1000 + kinds * 100 + relays * 10 + sightings \
                 FROM stats_totals"
            )
            .await,
            3 * 10000 + 2 * 1000 + 2 * 100 + 2 * 10 + 5,
            "{implementation}"
        );
        assert_eq!(
            scalar(&db, "SELECT count(*) FROM stats_daily").await,
            2,
            "{implementation}"
        );
        assert_eq!(
            scalar(&db, "SELECT count(*) FROM stats_refreshes").await,
            12,
            "{implementation}"
        );
    }
}

/// Starts `bigbrotr run initializer` on a database whose `relays` table a
/// transaction of the test holds locked, and waits until the initializer's
/// insert waits for that lock: mid-iteration.
async fn initializer_blocked_on_relays(
    db: &TestDb,
    grace: &str,
) -> (deadpool_postgres::Object, Child) {
    let init = bigbrotr(db, "bigbrotr")
        .args(["db", "init"])
        .output()
        .expect("bigbrotr runs");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let locker = db.client().await.unwrap();
    locker
        .batch_execute("BEGIN; LOCK TABLE relays IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let child = bigbrotr(db, "bigbrotr")
        .env("BIGBROTR_RUNTIME__SHUTDOWN_GRACE", grace)
        .args(["run", "initializer"])
        .spawn()
        .expect("bigbrotr starts");
    let started = Instant::now();
    let waiting = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND wait_event_type = 'Lock'",
        db.name()
    );
    while scalar(db, &waiting).await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the initializer never waited for the lock"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (locker, child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_an_iteration_exits_0_within_the_grace_period_with_nothing_half_written() {
    let db = empty_database().await;
    let (locker, mut child) = initializer_blocked_on_relays(&db, "1s").await;
    let signalled = Instant::now();
    signal(&child, "TERM");
    let status = wait_with_limit(&mut child, Duration::from_secs(20)).expect("it exits");
    let took = signalled.elapsed();
    let (stdout, stderr) = output(&mut child);
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(6),
        "exited after {took:?}: {stderr}"
    );
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    assert!(
        stderr.contains("abandoned the current iteration"),
        "{stderr}"
    );
    assert!(stderr.contains("connection pool closed"), "{stderr}");
    assert_eq!(
        stdout,
        "initializer: stopped after 0 iteration(s), 0 failed, current iteration abandoned\n"
    );

    locker.batch_execute("ROLLBACK").await.unwrap();
    drop(locker);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The batch is one transaction: all of it or nothing, never a part.
    let stored = scalar(&db, "SELECT count(*) FROM relays").await;
    assert!(
        stored == 0 || stored == SHIPPED_SEEDS,
        "{stored} relays stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let db = empty_database().await;
    let (locker, mut child) = initializer_blocked_on_relays(&db, "60s").await;
    signal(&child, "TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = Instant::now();
    signal(&child, "INT");
    let status = wait_with_limit(&mut child, Duration::from_secs(20)).expect("it exits");
    let took = second.elapsed();
    let (_, stderr) = output(&mut child);
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(took < Duration::from_secs(3), "exited after {took:?}");
    assert!(stderr.contains("second signal"), "{stderr}");
    locker.batch_execute("ROLLBACK").await.unwrap();
}

#[test]
fn an_unknown_key_in_a_service_file_is_named_with_its_file_and_nothing_starts() {
    let root = tempfile::tempdir().unwrap();
    let services = root.path().join("implementations/mine/config/services");
    std::fs::create_dir_all(&services).unwrap();
    let file: PathBuf = services.join("initializer.yaml");
    std::fs::write(&file, "initializer:\n  batch_size: 10\n  seed_fil: x.txt\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bigbrotr"))
        .arg("--root")
        .arg(root.path())
        .args(["-i", "mine", "run", "initializer"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "bigbrotr: could not load the configuration of service `initializer`: invalid configuration in {}:\n  initializer.seed_fil: unknown key; expected one of `ensure_schema`, `seed_file`, `batch_size`\n",
            file.display()
        )
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn an_unknown_service_is_refused_with_the_known_ones() {
    let out = Command::new(env!("CARGO_BIN_EXE_bigbrotr"))
        .arg("--root")
        .arg(workspace_root())
        .args(["run", "initializer", "nosuch"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("bigbrotr: unknown service `nosuch`; known services: "),
        "{stderr}"
    );
    assert!(stderr.contains("initializer"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// A relay running in this process on 127.0.0.1 holding `events`, with a
/// rate limit that does not get in the way, and its URL.
async fn local_relay(events: &[nostr::Event]) -> (nostr_relay_builder::LocalRelay, String) {
    use nostr_relay_builder::prelude::{
        MemoryDatabase, MemoryDatabaseOptions, NostrDatabase, RateLimit, RelayBuilder,
    };

    let database = MemoryDatabase::with_opts(MemoryDatabaseOptions {
        events: true,
        max_events: None,
    });
    for event in events {
        database.save_event(event).await.unwrap();
    }
    let relay = nostr_relay_builder::LocalRelay::new(
        RelayBuilder::default()
            .database(database)
            .rate_limit(RateLimit {
                max_reqs: 10_000,
                notes_per_minute: 100_000,
            }),
    );
    relay.run().await.expect("the relay starts");
    let url = relay.url().await.as_str_without_trailing_slash().to_owned();
    (relay, url)
}

/// A fresh database knowing one clearnet relay, `url`.
async fn database_with_relay(url: &str) -> TestDb {
    let db = TestDb::with_pool_size("bigbrotr", 4)
        .await
        .expect("test database");
    db.client()
        .await
        .unwrap()
        .execute_typed(
            "SELECT * FROM insert_relays(ARRAY[$1], ARRAY['clearnet'], 1)",
            &[(&url, tokio_postgres::types::Type::TEXT)],
        )
        .await
        .expect("the relay recorded");
    db
}

/// `bigbrotr ARGS` as the archiving tests run it: no monitor key (an
/// ephemeral one), short NIP-11 checks, no end lag.
fn archiving(db: &TestDb, args: &[&str]) -> Command {
    let mut command = bigbrotr(db, "bigbrotr");
    command
        .args(args)
        .env_remove("MONITOR_PRIVATE_KEY")
        .env("BIGBROTR_MONITOR__TIMEOUTS__NIP11", "2s")
        .env("BIGBROTR_SYNCHRONIZER__END_LAG", "0");
    command
}

/// Waits (at most 60 s, off the async threads) for `child` to end, asserts
/// that it exited 0, and returns what it wrote on stderr.
async fn exits_0(mut child: Child, what: &str) -> String {
    let (status, (stdout, stderr)) = tokio::task::spawn_blocking(move || {
        let status = wait_with_limit(&mut child, Duration::from_secs(60));
        (status, output(&mut child))
    })
    .await
    .unwrap();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{what}\nstdout: {stdout}\nstderr: {stderr}"
    );
    stderr
}

/// Runs `bigbrotr ARGS` (see [`archiving`]) to its end, asserting exit 0;
/// returns its stderr.
async fn run_to_end(db: &TestDb, args: &[&str]) -> String {
    let child = archiving(db, args).spawn().expect("bigbrotr starts");
    exits_0(child, &args.join(" ")).await
}

/// `bigbrotr run monitor --once` against a relay running in this process:
/// the relay is checked (open, read, write) and the check stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_monitor_once_checks_a_local_relay_and_stores_the_check() {
    let (relay, url) = local_relay(&[]).await;
    let db = database_with_relay(&url).await;
    let stderr = run_to_end(&db, &["run", "monitor", "--once"]).await;

    assert_eq!(scalar(&db, "SELECT count(*) FROM relay_metadata").await, 1);
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM relay_metadata WHERE connected").await,
        1
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM relay_metadata m JOIN nip66 n ON n.id = m.nip66_id \
             WHERE (n.data->>'readable')::boolean AND (n.data->>'writable')::boolean"
        )
        .await,
        1,
        "stderr: {stderr}"
    );
    relay.shutdown();
}

/// The archive loop through the binary: the monitor finds a local relay
/// readable, the synchronizer archives what it holds, and the finder reads
/// the relay list (kind 10002) among those events and records the relay it
/// names.
#[tokio::test]
async fn run_monitor_synchronizer_and_finder_once_archive_a_local_relay_and_find_a_new_one() {
    use nostr::{EventBuilder, Keys, Kind, Tag, Timestamp};

    let keys = Keys::generate();
    let mut events = Vec::new();
    for i in 0..40_u64 {
        events.push(
            EventBuilder::new(Kind::TextNote, format!("note {i}"))
                .custom_created_at(Timestamp::from_secs(1_700_000_000 + i * 60))
                .sign_with_keys(&keys)
                .unwrap(),
        );
    }
    events.push(
        EventBuilder::new(Kind::RelayList, "")
            .tag(Tag::parse(["r", "wss://found.example.com/"]).unwrap())
            .custom_created_at(Timestamp::from_secs(1_700_010_000))
            .sign_with_keys(&keys)
            .unwrap(),
    );
    let (relay, url) = local_relay(&events).await;
    let db = database_with_relay(&url).await;

    run_to_end(&db, &["run", "monitor", "--once"]).await;
    run_to_end(&db, &["run", "synchronizer", "--once"]).await;
    // The 41 events, and the one the monitor's write check left on the relay.
    assert_eq!(scalar(&db, "SELECT count(*) FROM events").await, 42);
    assert_eq!(scalar(&db, "SELECT count(*) FROM events_relays").await, 42);
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM events WHERE kind = 30078").await,
        1
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM sync_cursors WHERE created_at IS NOT NULL"
        )
        .await,
        1
    );

    // The finder reads no sighting while an older transaction is open, in
    // any database of the cluster: other tests' too.
    let started = Instant::now();
    while scalar(
        &db,
        "SELECT count(*) FROM events_relays \
         WHERE insert_xid >= pg_snapshot_xmin(pg_current_snapshot())",
    )
    .await
        > 0
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "transactions left open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    run_to_end(&db, &["run", "finder", "--once"]).await;
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM relays WHERE url = 'wss://found.example.com'"
        )
        .await,
        1
    );
    assert_eq!(scalar(&db, "SELECT count(*) FROM relays").await, 2);

    // Run again: nothing new is archived or found.
    run_to_end(&db, &["run", "synchronizer", "finder", "--once"]).await;
    assert_eq!(scalar(&db, "SELECT count(*) FROM events_relays").await, 42);
    assert_eq!(scalar(&db, "SELECT count(*) FROM relays").await, 2);
    relay.shutdown();
}

/// `bigbrotr run synchronizer` stopped by SIGTERM in the middle of a relay
/// exits 0 having archived whole batches only, and the next run archives
/// exactly the rest: nothing lost, nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synchronizer_stopped_by_sigterm_mid_run_then_started_again_archives_exactly_everything()
{
    use nostr::{EventBuilder, Keys, Kind, Timestamp};

    const EVENTS: u64 = 4_000;
    let keys = Keys::generate();
    let events: Vec<nostr::Event> = (0..EVENTS)
        .map(|i| {
            EventBuilder::new(Kind::TextNote, format!("note {i}"))
                .custom_created_at(Timestamp::from_secs(1_700_000_000 + i * 30))
                .sign_with_keys(&keys)
                .unwrap()
        })
        .collect();
    let (relay, url) = local_relay(&events).await;
    let db = database_with_relay(&url).await;
    // Small batches and windows: many commits, so the signal lands between
    // two of them.
    let start = |args: &[&str]| {
        archiving(&db, args)
            .env("BIGBROTR_SYNCHRONIZER__BATCH_SIZE", "50")
            .env("BIGBROTR_SYNCHRONIZER__LIMIT", "100")
            .spawn()
            .expect("bigbrotr starts")
    };

    // The monitor finds the relay readable (and leaves its write check on it).
    exits_0(start(&["run", "monitor", "--once"]), "monitor").await;
    let total = i64::try_from(EVENTS).unwrap() + 1;

    let child = start(&["run", "synchronizer"]);
    let started = Instant::now();
    while scalar(&db, "SELECT count(*) FROM events_relays").await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "nothing archived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal(&child, "TERM");
    exits_0(child, "synchronizer stopped by SIGTERM").await;
    let first = scalar(&db, "SELECT count(*) FROM events_relays").await;
    assert!(
        first > 0 && first <= total,
        "{first} archived by the first run"
    );
    // Whole batches only: events and provenance rows go together.
    assert_eq!(scalar(&db, "SELECT count(*) FROM events").await, first);

    exits_0(
        start(&["run", "synchronizer", "--once"]),
        "synchronizer again",
    )
    .await;
    assert_eq!(scalar(&db, "SELECT count(*) FROM events").await, total);
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM events_relays").await,
        total
    );
    relay.shutdown();
}

/// An internal service on a loopback port the egress policy does not allow
/// (only the test relay's own address and port are) is never connected to
/// by the monitor and the finder, though events and the relay list name it
/// in every form: a literal address, its IPv4-mapped form and `localhost`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_internal_service_named_by_events_sees_no_connection_from_a_finder_and_monitor_cycle() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use nostr::{EventBuilder, Keys, Kind, Tag, Timestamp};

    let internal = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = internal.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    std::thread::spawn(move || {
        for stream in internal.incoming() {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    let named = [
        format!("ws://127.0.0.1:{port}"),
        format!("ws://[::ffff:127.0.0.1]:{port}"),
        format!("ws://localhost:{port}"),
    ];
    let keys = Keys::generate();
    let mut list = EventBuilder::new(Kind::RelayList, "");
    for url in &named {
        list = list.tag(Tag::parse(["r", url.as_str()]).unwrap());
    }
    let list = list
        .custom_created_at(Timestamp::from_secs(1_700_000_000))
        .sign_with_keys(&keys)
        .unwrap();
    let (relay, url) = local_relay(&[list]).await;
    let db = database_with_relay(&url).await;
    // Also recorded already, as an older, looser configuration might have.
    for url in &named {
        db.client()
            .await
            .unwrap()
            .execute_typed(
                "SELECT * FROM insert_relays(ARRAY[$1], ARRAY['clearnet'], 1)",
                &[(url, tokio_postgres::types::Type::TEXT)],
            )
            .await
            .expect("the relay recorded");
    }
    let only_the_relay = format!("[{}]", url.trim_start_matches("ws://"));
    let run = |args: &'static [&'static str]| {
        let mut command = archiving(&db, args);
        command.env("BIGBROTR_EGRESS__ALLOW", &only_the_relay);
        command.spawn().expect("bigbrotr starts")
    };
    exits_0(run(&["run", "monitor", "--once"]), "monitor").await;
    exits_0(run(&["run", "finder", "--once"]), "finder").await;

    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "the internal service was reached"
    );
    // The relay was checked; every name of the internal service was stored
    // refused, with the reason.
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM relay_metadata WHERE connected").await,
        1
    );
    let refused = scalar(
        &db,
        "SELECT count(*) FROM relay_metadata m JOIN nip66 n ON n.id = m.nip66_id \
         WHERE NOT m.connected AND n.data ? 'egress_denied'",
    )
    .await;
    let distinct_urls = scalar(&db, "SELECT count(*) FROM relays").await;
    assert_eq!(refused + 1, distinct_urls, "relays: {distinct_urls}");
    relay.shutdown();
}
