//! Each kind of relay, checked by a monitoring cycle, and the exact rows
//! stored for it.

use std::time::Duration;

use bigbrotr_brotr::Network;
use nostr_relay_builder::prelude::{RelayBuilderNip42, RelayBuilderNip42Mode};
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::support::{
    assert_rtt, builder, closed_port, keys_of, monitor, monitor_config, monitor_with, Fixture,
    Nip11, ReadOnly, Silent, TestRelay, WriteOnly,
};

fn document() -> Value {
    json!({
        "name": "test relay",
        "description": "an in-process relay",
        "supported_nips": [1, 11, 42],
        "software": "nostr-relay-builder",
        "x-unknown": {"kept": [1, "two"]},
    })
}

/// Runs one cycle over `fixture` and checks it stored one check of one
/// clearnet relay.
async fn one_cycle(fixture: &Fixture, connected: bool) {
    let report = monitor()
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    let clearnet = report.network(Network::Clearnet);
    assert_eq!((clearnet.due, clearnet.checked, clearnet.stored), (1, 1, 1));
    assert_eq!(
        (clearnet.connected, clearnet.failed),
        if connected { (1, 0) } else { (0, 1) }
    );
    assert_eq!(report.tor, Default::default());
    assert!(!report.cancelled);
}

#[tokio::test]
async fn a_readable_and_writable_relay_is_stored_with_its_document() {
    let relay = TestRelay::start(builder(), Nip11::Document(document())).await;
    let fixture = Fixture::new().await;
    fixture.relay(&relay.url).await;
    let before = bigbrotr_utils::now_timestamp();
    one_cycle(&fixture, true).await;

    let stored = fixture.only_check(&relay.url).await;
    assert!(stored.connected);
    assert!(stored.generated_at >= before && stored.generated_at <= before + 10);
    assert_eq!(stored.nip11, Some(document()));
    let nip66 = stored.nip66.expect("a NIP-66 document");
    assert_eq!(
        keys_of(&nip66),
        [
            "network",
            "readable",
            "rtt_open",
            "rtt_read",
            "rtt_write",
            "supported_nips",
            "writable"
        ]
    );
    assert_eq!(nip66["network"], "clearnet");
    assert_eq!(nip66["readable"], true);
    assert_eq!(nip66["writable"], true);
    assert_eq!(nip66["supported_nips"], json!([1, 11, 42]));
    for rtt in ["rtt_open", "rtt_read", "rtt_write"] {
        assert_rtt(&nip66, rtt);
    }
    // The write check's event is on the relay, signed by the monitor.
    let written = relay
        .events(nostr::Filter::new().kind(nostr::Kind::Custom(30078)))
        .await;
    assert_eq!(written.len(), 1);
}

#[tokio::test]
async fn a_read_only_relay_is_readable_but_not_writable_with_the_reason() {
    let relay = TestRelay::start(
        builder().write_policy(ReadOnly),
        Nip11::Document(document()),
    )
    .await;
    let fixture = Fixture::new().await;
    fixture.relay(&relay.url).await;
    one_cycle(&fixture, true).await;

    let stored = fixture.only_check(&relay.url).await;
    assert!(stored.connected);
    assert_eq!(stored.nip11, Some(document()));
    let nip66 = stored.nip66.expect("a NIP-66 document");
    assert_eq!(
        keys_of(&nip66),
        [
            "network",
            "readable",
            "rtt_open",
            "rtt_read",
            "rtt_write",
            "supported_nips",
            "writable",
            "write_error"
        ]
    );
    assert_eq!(nip66["readable"], true);
    assert_eq!(nip66["writable"], false);
    assert_eq!(nip66["rtt_write"], Value::Null);
    assert_eq!(nip66["write_error"], "rejected: blocked: read only");
    assert_rtt(&nip66, "rtt_open");
    assert_rtt(&nip66, "rtt_read");
}

#[tokio::test]
async fn a_relay_closing_reads_is_not_readable_with_its_reason_and_keeps_the_other_results() {
    let relay = TestRelay::start(
        builder().query_policy(WriteOnly),
        Nip11::Document(document()),
    )
    .await;
    let fixture = Fixture::new().await;
    fixture.relay(&relay.url).await;
    one_cycle(&fixture, true).await;

    let stored = fixture.only_check(&relay.url).await;
    assert_eq!(stored.nip11, Some(document()));
    let nip66 = stored.nip66.expect("a NIP-66 document");
    assert_eq!(
        keys_of(&nip66),
        [
            "network",
            "read_error",
            "readable",
            "rtt_open",
            "rtt_read",
            "rtt_write",
            "supported_nips",
            "writable",
            "write_error"
        ]
    );
    assert_eq!(nip66["readable"], false);
    assert_eq!(nip66["rtt_read"], Value::Null);
    assert_eq!(nip66["read_error"], "closed: error: no reads here");
    // The event was accepted, but could not be read back to prove it.
    assert_eq!(nip66["writable"], false);
    assert_eq!(nip66["rtt_write"], Value::Null);
    assert_eq!(
        nip66["write_error"],
        "read back closed: error: no reads here"
    );
    assert_rtt(&nip66, "rtt_open");
}

#[tokio::test]
async fn a_nip11_document_over_the_size_limit_is_not_stored() {
    let relay = TestRelay::start(builder(), Nip11::Document(document())).await;
    let mut config = monitor_config();
    config.nip11_max_bytes = 32;
    let check = monitor_with(&config).check_relay(&relay.url).await;
    assert!(check.connected);
    assert_eq!(check.nip11, None);
    assert_eq!(
        check.nip11_error.as_deref(),
        Some("the document is larger than 32 bytes")
    );
    assert_eq!(
        check.nip66().expect("a NIP-66 document")["nip11_error"],
        "the document is larger than 32 bytes"
    );
}

#[tokio::test]
async fn a_relay_requiring_auth_is_read_and_written_after_authenticating() {
    let relay = TestRelay::start(
        builder().nip42(RelayBuilderNip42 {
            mode: RelayBuilderNip42Mode::Both,
        }),
        Nip11::Document(document()),
    )
    .await;
    let fixture = Fixture::new().await;
    fixture.relay(&relay.url).await;
    one_cycle(&fixture, true).await;

    let nip66 = fixture
        .only_check(&relay.url)
        .await
        .nip66
        .expect("a NIP-66 document");
    assert_eq!(
        keys_of(&nip66),
        [
            "auth",
            "network",
            "readable",
            "rtt_open",
            "rtt_read",
            "rtt_write",
            "supported_nips",
            "writable"
        ]
    );
    assert_eq!(nip66["auth"], true);
    assert_eq!(nip66["readable"], true);
    assert_eq!(nip66["writable"], true);
    for rtt in ["rtt_open", "rtt_read", "rtt_write"] {
        assert_rtt(&nip66, rtt);
    }
}

#[tokio::test]
async fn a_relay_asking_for_proof_of_work_gets_it() {
    let mut nip11 = document();
    nip11["limitation"] = json!({"min_pow_difficulty": 8});
    let relay = TestRelay::start(builder().min_pow(8), Nip11::Document(nip11.clone())).await;
    let fixture = Fixture::new().await;
    fixture.relay(&relay.url).await;
    one_cycle(&fixture, true).await;

    let stored = fixture.only_check(&relay.url).await;
    assert_eq!(stored.nip11, Some(nip11));
    let nip66 = stored.nip66.expect("a NIP-66 document");
    assert_eq!(nip66["writable"], true, "{nip66}");
    assert_eq!(nip66["pow"], 8);
    let written = relay
        .events(nostr::Filter::new().kind(nostr::Kind::Custom(30078)))
        .await;
    assert_eq!(written.len(), 1);
    assert!(written[0].id.check_pow(8));
}

#[tokio::test]
async fn a_relay_that_never_answers_times_out_and_is_stored_as_not_connected() {
    let silent = Silent::start().await;
    let fixture = Fixture::new().await;
    fixture.relay(&silent.url).await;
    let mut config = monitor_config();
    config.timeouts.nip11 = Duration::from_secs(1);
    config.timeouts.open = Duration::from_secs(1);
    let started = Instant::now();
    let report = monitor_with(&config)
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    let elapsed = started.elapsed();
    // NIP-11 and open run side by side, each bounded by 1 s.
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
    assert_eq!(report.clearnet.failed, 1);
    assert_eq!(report.clearnet.stored, 1);

    let stored = fixture.only_check(&silent.url).await;
    assert!(!stored.connected);
    assert_eq!(stored.nip11, None);
    assert_eq!(stored.nip66, None);

    let check = monitor_with(&config).check_relay(&silent.url).await;
    assert!(!check.connected);
    assert_eq!(
        check.open_error.as_deref(),
        Some("not connected within 1000 ms")
    );
    assert_eq!(
        check.nip11_error.as_deref(),
        Some("no document within 1000 ms")
    );
}

#[tokio::test]
async fn a_closed_port_is_stored_as_not_connected() {
    let url = format!("ws://127.0.0.1:{}", closed_port().await);
    let fixture = Fixture::new().await;
    fixture.relay(&url).await;
    one_cycle(&fixture, false).await;

    let stored = fixture.only_check(&url).await;
    assert!(!stored.connected);
    assert_eq!(stored.nip11, None);
    assert_eq!(stored.nip66, None);

    let check = monitor().check_relay(&url).await;
    assert!(check.open_error.is_some());
    let nip11_error = check.nip11_error.expect("a NIP-11 error");
    assert!(nip11_error.contains("onnection refused"), "{nip11_error}");
}

#[tokio::test]
async fn a_malformed_nip11_document_is_not_stored_and_the_other_checks_are_made() {
    let relay = TestRelay::start(builder(), Nip11::Body("<html>not a relay document</html>")).await;
    let fixture = Fixture::new().await;
    fixture.relay(&relay.url).await;
    one_cycle(&fixture, true).await;

    let stored = fixture.only_check(&relay.url).await;
    assert!(stored.connected);
    assert_eq!(stored.nip11, None);
    let nip66 = stored.nip66.expect("a NIP-66 document");
    assert_eq!(
        keys_of(&nip66),
        [
            "network",
            "nip11_error",
            "readable",
            "rtt_open",
            "rtt_read",
            "rtt_write",
            "writable"
        ]
    );
    assert_eq!(nip66["readable"], true);
    assert_eq!(nip66["writable"], true);
    let reason = nip66["nip11_error"].as_str().expect("a reason");
    assert!(reason.starts_with("not JSON: "), "{reason}");
}

#[tokio::test]
async fn an_invalid_url_is_a_failed_check_without_io() {
    let check = monitor().check_relay("https://relay.example").await;
    assert!(!check.connected);
    assert_eq!(check.url, "https://relay.example");
    assert!(check
        .open_error
        .as_deref()
        .expect("a reason")
        .starts_with("invalid relay URL: "));
    assert_eq!(check.nip66(), None);
}
