//! Hostile relays: megabytes of reason, and proof of work nobody can mine.

use std::time::Duration;

use bigbrotr_utils::REMOTE_TEXT_MAX_BYTES;
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::support::{builder, monitor_config, monitor_with, Fixture, Nip11, Refuse, TestRelay};

/// The longest a bounded text can be: the bound, `…` and the length.
const MAX_STORED: usize = REMOTE_TEXT_MAX_BYTES + 32;

/// `value` as text, asserting it is bounded and, when it is the reason
/// the relay wrote (`size` bytes of `x`) after some words of ours, that it
/// says the original length.
#[track_caller]
fn bounded(value: &Value, size: usize) -> &str {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a text: {value}"));
    assert!(text.len() <= MAX_STORED, "{} bytes", text.len());
    let ours = text.find("xxx").expect("the relay's reason");
    assert!(
        text.ends_with(&format!("… ({} bytes)", ours + size)),
        "{}",
        &text[text.len().saturating_sub(40)..]
    );
    text
}

#[tokio::test]
async fn a_relay_answering_with_megabytes_of_reason_gets_a_bounded_reason_stored() {
    // 1 MB reaches the monitor; 10 MB is more than the client takes in one
    // message, so it is dropped before it is read.
    for size in [1024 * 1024, 10 * 1024 * 1024] {
        let reason = "x".repeat(size);
        let relay = TestRelay::start(
            builder()
                .write_policy(Refuse(reason.clone()))
                .query_policy(Refuse(reason)),
            Nip11::Document(json!({"name": "loud"})),
        )
        .await;
        let fixture = Fixture::new().await;
        fixture.relay(&relay.url).await;
        let mut config = monitor_config();
        config.timeouts.read = Duration::from_secs(1);
        config.timeouts.write = Duration::from_secs(1);
        let monitor = monitor_with(&config);

        let check = monitor.check_relay(&relay.url).await;
        let report = monitor
            .run_cycle(&fixture.brotr, &CancellationToken::new())
            .await
            .expect("a cycle");
        assert_eq!(report.clearnet.stored, 1);
        let stored = fixture.only_check(&relay.url).await;
        let nip66 = stored.nip66.expect("a NIP-66 document");
        assert_eq!(nip66["readable"], false);
        assert_eq!(nip66["writable"], false);
        // What is logged is the check itself, bounded the same way.
        let logged = [&check.read, &check.write].map(|probe| {
            probe
                .as_ref()
                .and_then(|p| p.error.clone())
                .expect("a reason")
        });
        for text in &logged {
            assert!(text.len() <= MAX_STORED, "{} bytes", text.len());
        }
        if size == 1024 * 1024 {
            let read = bounded(&nip66["read_error"], size);
            assert!(read.starts_with("closed: "), "{read}");
            let write = bounded(&nip66["write_error"], size);
            assert!(write.starts_with("rejected: "), "{write}");
            assert_eq!(logged[0], read);
            assert_eq!(logged[1], write);
        } else {
            for key in ["read_error", "write_error"] {
                let text = nip66[key].as_str().expect("a reason");
                assert!(text.len() <= MAX_STORED, "{key}: {} bytes", text.len());
            }
        }
    }
}

#[tokio::test]
async fn a_nip11_error_quoting_the_document_is_bounded() {
    let long = "y".repeat(50_000);
    let document = json!({"supported_nips": long});
    let relay = TestRelay::start(builder(), Nip11::Document(document.clone())).await;
    let monitor = monitor_with(&monitor_config());
    let check = monitor.check_relay(&relay.url).await;
    // The document itself is kept (it is within nip11_max_bytes); the error
    // quoting it is cut.
    assert_eq!(check.nip11, Some(document));
    let error = check.nip11_error.expect("not a valid NIP-11 document");
    assert!(
        error.starts_with("not a valid NIP-11 document: "),
        "{error}"
    );
    assert!(error.len() <= MAX_STORED, "{} bytes", error.len());
    assert!(error.contains("… ("), "{error}");
}

#[tokio::test]
async fn a_relay_asking_for_more_proof_of_work_than_allowed_is_not_mined_for() {
    let relay = TestRelay::start(
        builder(),
        Nip11::Document(json!({"limitation": {"min_pow_difficulty": 40}})),
    )
    .await;
    let monitor = monitor_with(&monitor_config());
    let started = Instant::now();
    let check = monitor.check_relay(&relay.url).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(check.readable());
    let write = check.write.expect("the write check ran");
    assert!(!write.ok);
    assert_eq!(
        write.error.as_deref(),
        Some("the relay asks for proof of work of difficulty 40, above max_pow_difficulty (16)")
    );
    assert_eq!(check.pow, None);
}

#[tokio::test]
async fn proof_of_work_that_cannot_be_mined_in_time_stops_at_the_deadline() {
    let relay = TestRelay::start(
        builder(),
        Nip11::Document(json!({"limitation": {"min_pow_difficulty": 32}})),
    )
    .await;
    let fixture = Fixture::new().await;
    fixture.relay(&relay.url).await;
    let mut config = monitor_config();
    config.max_pow_difficulty = 32;
    config.timeouts.pow = Duration::from_millis(300);
    let monitor = monitor_with(&config);

    let started = Instant::now();
    let check = monitor.check_relay(&relay.url).await;
    // The check waits for the mining thread, which gives up at the
    // deadline: nothing is left running once the check is done.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(check.connected);
    assert!(check.readable());
    let write = check.write.expect("the write check ran");
    assert!(!write.ok);
    let reason = write.error.expect("a reason");
    assert!(
        reason.starts_with("proof of work of difficulty 32 not mined within 3"),
        "{reason}"
    );
    assert_eq!(check.pow, Some(32));

    // Stored with the reason, as a relay the monitor cannot write to.
    let report = monitor
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert_eq!(report.clearnet.stored, 1);
    let nip66 = fixture
        .only_check(&relay.url)
        .await
        .nip66
        .expect("a NIP-66 document");
    assert_eq!(nip66["writable"], false);
    assert_eq!(nip66["pow"], 32);
    let stored = nip66["write_error"].as_str().expect("a reason");
    assert!(
        stored.starts_with("proof of work of difficulty 32 not mined within 3"),
        "{stored}"
    );
}

/// Whether a blocking thread of the runtime is free to take work within
/// `wait`.
async fn a_blocking_thread_is_free_within(wait: Duration) -> bool {
    tokio::time::timeout(wait, tokio::task::spawn_blocking(|| ()))
        .await
        .is_ok()
}

#[test]
fn an_abandoned_check_stops_mining_and_frees_its_thread() {
    // One blocking thread: while mining holds it, nothing else runs there.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let relay = TestRelay::start(
            builder(),
            Nip11::Document(json!({"limitation": {"min_pow_difficulty": 32}})),
        )
        .await;
        let mut config = monitor_config();
        config.max_pow_difficulty = 32;
        config.timeouts.pow = Duration::from_secs(600);
        let monitor = monitor_with(&config);
        assert!(a_blocking_thread_is_free_within(Duration::from_secs(1)).await);

        let check = tokio::spawn(async move { monitor.check_relay(&relay.url).await });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            !a_blocking_thread_is_free_within(Duration::from_millis(300)).await,
            "mining should hold the only blocking thread"
        );
        // The cycle abandons the check (as when it is cancelled).
        check.abort();
        assert!(check.await.expect_err("aborted").is_cancelled());
        assert!(
            a_blocking_thread_is_free_within(Duration::from_secs(2)).await,
            "mining went on after the check was abandoned"
        );
    });
}
