//! The HTTP endpoint of `bigbrotr run` with several real services in one
//! process: a service that fails stops alone while the others go on, and the
//! endpoint says which and why; `/metrics` passes `promtool check metrics`;
//! `bigbrotr run relay` serves the archive to a Nostr client, and the
//! endpoint tells where each event was seen.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bigbrotr_test_support::{metrics_problems, workspace_root, TestDb};
use serde_json::Value;

use crate::support::{bigbrotr, output, signal, wait_with_limit};

/// The start of the runtime's log line naming the endpoint's address.
const SERVING: &str = "serving /health";

/// A `bigbrotr run` child process whose log is read as it goes, and the
/// address of its HTTP endpoint.
struct Running {
    child: Child,
    log: Arc<Mutex<String>>,
    address: SocketAddr,
}

impl Running {
    /// Starts `command` and waits (at most 30 s) for its log to name the
    /// address of the endpoint.
    fn start(mut command: Command) -> Self {
        let mut child = command.spawn().expect("bigbrotr starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let writer = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = writer.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let started = Instant::now();
        loop {
            let address = served_at(&log.lock().unwrap());
            if let Some(address) = address {
                return Self {
                    child,
                    log,
                    address,
                };
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("bigbrotr exited ({status}): {}", log.lock().unwrap());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no endpoint address in the log: {}",
                log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the process logged so far.
    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// `GET path`: the status code and the body.
    async fn get(&self, path: &str) -> (u16, String) {
        let response = reqwest::get(format!("http://{}{path}", self.address))
            .await
            .expect("the endpoint answers");
        let code = response.status().as_u16();
        (code, response.text().await.expect("a body"))
    }

    /// `/status` as JSON.
    async fn status(&self) -> Value {
        let (code, body) = self.get("/status").await;
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).expect("JSON")
    }

    /// Polls `/status` (at most 60 s) until `done` holds, and returns it.
    async fn status_when(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let status = self.status().await;
            if done(&status) {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "never {what}: {status:#}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits (at most 60 s) for the exit: its status,
    /// what it printed on stdout, and its log. Nothing else of the test
    /// runs meanwhile, so the wait blocks.
    fn terminate(mut self) -> (ExitStatus, String, String) {
        signal(&self.child, "TERM");
        let status = wait_with_limit(&mut self.child, Duration::from_secs(60));
        let (stdout, _) = output(&mut self.child);
        // The reader thread sees the end of stderr once the process exited.
        std::thread::sleep(Duration::from_millis(100));
        (status.expect("it exits"), stdout, self.log())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address the runtime's log line says it serves on.
fn served_at(log: &str) -> Option<SocketAddr> {
    address_in(log, SERVING)
}

/// The address of the first log line containing `marker`.
fn address_in(log: &str, marker: &str) -> Option<SocketAddr> {
    log.lines()
        .filter(|line| line.contains(marker))
        .find_map(|line| {
            let (_, rest) = line.split_once("address=")?;
            let value = rest.split_whitespace().next()?;
            value.trim_matches(|c| c == '"' || c == ',').parse().ok()
        })
}

/// The service named `name` in a `/status`.
fn service<'s>(status: &'s Value, name: &str) -> &'s Value {
    status["services"]
        .as_array()
        .and_then(|services| services.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no service {name} in {status:#}"))
}

/// The monitor and the finder in one process, on a database whose finder
/// cursor function is gone: the finder fails after two iterations in a row
/// and stops alone, the monitor goes on, `/health` and `/status` name the
/// finder and its error, and the process exits non-zero when stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_service_stops_alone_the_others_go_on_and_the_exit_is_non_zero() {
    let db = TestDb::new("bigbrotr").await.expect("test database");
    db.client()
        .await
        .unwrap()
        .batch_execute("DROP FUNCTION finder_get_cursor(text)")
        .await
        .unwrap();
    let mut command = bigbrotr(&db, "bigbrotr");
    command
        .args(["run", "monitor", "finder"])
        .env_remove("MONITOR_PRIVATE_KEY")
        .env("BIGBROTR_LOOP__INTERVAL", "200ms")
        .env("BIGBROTR_LOOP__ERROR_RETRY_DELAY", "100ms")
        .env("BIGBROTR_LOOP__MAX_CONSECUTIVE_ERRORS", "2");
    let running = Running::start(command);

    let status = running
        .status_when("the finder failed", |status| {
            service(status, "finder")["state"] == "failed"
        })
        .await;
    let finder = service(&status, "finder");
    assert_eq!(
        (&finder["iterations"], &finder["errors"]),
        (&2.into(), &2.into())
    );
    let error = finder["last_error"].as_str().expect("an error");
    assert!(
        error.starts_with("service `finder` stopped after 2 failed iterations in a row: ")
            && error.contains("finder_get_cursor"),
        "{error}"
    );
    assert_eq!(status["ready"], false);
    assert_eq!(
        status["problems"],
        serde_json::json!([format!("service `finder` failed: {error}")])
    );
    let (code, body) = running.get("/health").await;
    let one_line = error.replace('\n', " ");
    assert_eq!(
        (code, body),
        (
            503,
            format!("not ready\n- service `finder` failed: {one_line}\n")
        )
    );

    // The monitor goes on.
    let before = service(&status, "monitor")["iterations"].as_u64().unwrap();
    let later = running
        .status_when("the monitor went on", |status| {
            service(status, "monitor")["iterations"].as_u64().unwrap() >= before + 3
        })
        .await;
    assert_eq!(service(&later, "monitor")["state"], "running");
    assert_eq!(service(&later, "monitor")["errors"], 0);
    assert!(running
        .log()
        .contains("service `finder` failed (the other services go on)"));

    let (exit, stdout, log) = running.terminate();
    assert_eq!(exit.code(), Some(1), "{log}");
    assert!(
        stdout.contains("monitor: stopped after ")
            && stdout.contains("finder: failed after 2 iteration(s), 2 failed: service `finder` stopped after 2 failed iterations in a row"),
        "{stdout}"
    );
    assert!(
        log.contains("bigbrotr: 1 of 2 services failed: finder ("),
        "{log}"
    );
}

/// The families every `bigbrotr run monitor finder synchronizer` exposes
/// once each service has run an iteration: the runtime's own, then some of
/// each service's.
const EXPECTED_FAMILIES: [&str; 26] = [
    "bigbrotr_service_state",
    "bigbrotr_service_iterations_total",
    "bigbrotr_service_errors_total",
    "bigbrotr_service_consecutive_errors",
    "bigbrotr_service_last_iteration_duration_seconds",
    "bigbrotr_service_last_success_timestamp_seconds",
    "bigbrotr_service_iteration_duration_seconds",
    "bigbrotr_pool_connected",
    "bigbrotr_pool_max_connections",
    "bigbrotr_pool_connections",
    "bigbrotr_pool_waiting",
    "bigbrotr_pool_calls_total",
    "bigbrotr_pool_errors_total",
    "bigbrotr_pool_timeouts_total",
    "bigbrotr_pool_retries_total",
    "bigbrotr_pool_discarded_total",
    "bigbrotr_pool_wait_timeouts_total",
    "bigbrotr_pool_connect_errors_total",
    "bigbrotr_monitor_checks_total",
    "bigbrotr_monitor_failed_total",
    "bigbrotr_finder_new_relays_total",
    "bigbrotr_finder_candidates_total",
    "bigbrotr_synchronizer_events_stored_total",
    "bigbrotr_synchronizer_events_received_total",
    "bigbrotr_synchronizer_max_lag_seconds",
    "bigbrotr_synchronizer_pending_ranges",
];

/// The monitor, the finder and the synchronizer in one process: once each
/// ran, the process is ready and its `/metrics` passes `promtool check
/// metrics` without a word (its lint included), with every family under
/// the name it always had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_of_a_running_process_pass_promtool_check_metrics() {
    let db = TestDb::new("bigbrotr").await.expect("test database");
    let mut command = bigbrotr(&db, "bigbrotr");
    command
        .args(["run", "monitor", "finder", "synchronizer"])
        .env_remove("MONITOR_PRIVATE_KEY")
        .env("BIGBROTR_LOOP__INTERVAL", "200ms");
    let running = Running::start(command);
    running
        .status_when("every service ran once", |status| {
            status["services"].as_array().is_some_and(|services| {
                services.iter().all(|s| s["iterations"].as_u64() >= Some(1))
            })
        })
        .await;
    let ready = running.get("/health/ready").await;
    assert_eq!(ready, (200, "ready\n".to_owned()), "{}", running.log());

    let (code, metrics) = running.get("/metrics").await;
    assert_eq!(code, 200);
    assert_eq!(metrics_problems(&metrics), "", "in\n{metrics}");
    for family in EXPECTED_FAMILIES {
        assert!(
            metrics.contains(&format!("\n# TYPE {family} ")),
            "no family {family} in\n{metrics}"
        );
    }
    // What the shipped alerts read is there (but the refresher's, a
    // service of its own).
    let alerts =
        std::fs::read_to_string(workspace_root().join("deploy/prometheus/alerts.yml")).unwrap();
    let mut read = alerts
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("bigbrotr_"))
        .collect::<Vec<_>>();
    read.sort_unstable();
    read.dedup();
    assert!(read.len() >= 7, "{read:?}");
    for name in read {
        assert!(
            name == "bigbrotr_refresher_failures_total"
                || metrics.contains(&format!("\n# TYPE {name} ")),
            "the alerts read {name}, which /metrics does not show"
        );
    }
    for sample in [
        "bigbrotr_service_state{service=\"finder\",state=\"running\"} 1\n",
        "bigbrotr_pool_connected 1\n",
        "bigbrotr_monitor_checks_total{service=\"monitor\",network=\"clearnet\"} 0\n",
    ] {
        assert!(metrics.contains(sample), "no {sample:?} in\n{metrics}");
    }

    let (exit, stdout, log) = running.terminate();
    assert_eq!(exit.code(), Some(0), "{stdout}\n{log}");
}

/// `bigbrotr run relay` over an archive filled by `bigbrotr import`: a Nostr
/// client (nostr-sdk's, as `nak req -k 1 -l 5` would) gets the five newest
/// notes, verified; `EVENT` is refused; the endpoint answers where an event
/// was seen and `/metrics` passes promtool with the relay's families.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bigbrotr_run_relay_serves_the_archive_to_a_nostr_client() {
    use nostr::{EventBuilder, JsonUtil, Keys, Kind};

    let db = TestDb::new("bigbrotr").await.expect("test database");
    let keys = Keys::generate();
    let notes: Vec<nostr::Event> = (0..8)
        .map(|i| {
            EventBuilder::new(Kind::TextNote, format!("note {i}"))
                .custom_created_at(nostr::Timestamp::from_secs(1_700_000_000 + i))
                .sign_with_keys(&keys)
                .expect("signed")
        })
        .collect();
    let dir = tempfile::tempdir().expect("temporary folder");
    let file = dir.path().join("notes.jsonl");
    let lines: Vec<String> = notes.iter().map(JsonUtil::as_json).collect();
    std::fs::write(&file, lines.join("\n")).expect("written");
    let imported = bigbrotr(&db, "bigbrotr")
        .args(["import", "--relay", "wss://seen.example"])
        .arg(&file)
        .output()
        .expect("import runs");
    assert!(imported.status.success(), "{imported:?}");

    let mut command = bigbrotr(&db, "bigbrotr");
    command
        .args(["run", "relay"])
        .env("BIGBROTR_RELAY__LISTEN", "127.0.0.1:0");
    let running = Running::start(command);
    let started = Instant::now();
    let relay = loop {
        if let Some(address) = address_in(&running.log(), "read-only relay") {
            break address;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            running.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let client = nostr_sdk::Client::new(keys.clone());
    client
        .add_relay(format!("ws://{relay}"))
        .await
        .expect("relay");
    client.connect().await;
    let filter = nostr::Filter::new().kind(Kind::TextNote).limit(5);
    let got = client
        .fetch_events(filter, Duration::from_secs(20))
        .await
        .expect("events");
    let mut got: Vec<u64> = got
        .iter()
        .map(|e| e.created_at.as_secs() - 1_700_000_000)
        .collect();
    got.sort_unstable();
    assert_eq!(got, [3, 4, 5, 6, 7]);
    let refused = client
        .send_event(
            &EventBuilder::text_note("mine")
                .sign_with_keys(&keys)
                .expect("signed"),
        )
        .await
        .expect("sent");
    assert!(refused.success.is_empty(), "{refused:?}");
    client.disconnect().await;

    let (code, body) = running
        .get(&format!("/events/{}/relays", notes[0].id.to_hex()))
        .await;
    assert_eq!(code, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(seen["relays"][0]["url"], "wss://seen.example");
    let (code, metrics) = running.get("/metrics").await;
    assert_eq!(code, 200);
    assert_eq!(metrics_problems(&metrics), "", "in\n{metrics}");
    for sample in [
        "bigbrotr_relay_messages_total{service=\"relay\",type=\"req\"}",
        "bigbrotr_relay_messages_total{service=\"relay\",type=\"event\"} 1\n",
        "bigbrotr_relay_events_sent_total{service=\"relay\"} 5\n",
    ] {
        assert!(metrics.contains(sample), "no {sample:?} in\n{metrics}");
    }
    let (exit, stdout, log) = running.terminate();
    assert_eq!(exit.code(), Some(0), "{stdout}\n{log}");
}
