//! Monitoring cycles: which relays are due, networks, cancellation and
//! publishing.

use std::time::Duration;

use bigbrotr_brotr::{Network, RelayId, RelayMetadata};
use bigbrotr_config::NostrConfig;
use bigbrotr_monitor::{select_due_relays, DueRelay, Monitor};
use nostr::{Filter, Keys, Kind};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::support::{
    builder, closed_port, loopback_egress, monitor_config, monitor_with, Fixture, Nip11, Silent,
    TestRelay,
};

const NOW: i64 = 1_800_000_000;

async fn check_at(fixture: &Fixture, relay_id: RelayId, generated_at: i64) {
    let stored = fixture
        .brotr
        .insert_relay_metadata_batch(&[RelayMetadata {
            relay_id,
            generated_at,
            connected: false,
            nip11: None,
            nip66: None,
        }])
        .await
        .expect("stored");
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn never_checked_and_stale_relays_are_due_and_fresh_ones_are_not() {
    let fixture = Fixture::new().await;
    let stale = fixture.relay("wss://stale.example").await;
    let fresh = fixture.relay("wss://fresh.example").await;
    let never = fixture.relay("wss://never.example").await;
    let staler = fixture.relay("wss://staler.example").await;
    let onion = fixture
        .relay("ws://2jsnlhfnelig5acq6iacydmzdbdmg7xwunm4xl6qwbvzacw4lwrjmlyd.onion")
        .await;
    // The latest check counts: `stale` was fresh once.
    check_at(&fixture, stale, NOW - 10_000).await;
    check_at(&fixture, stale, NOW - 3_600).await;
    check_at(&fixture, fresh, NOW - 3_599).await;
    check_at(&fixture, staler, NOW - 7_200).await;

    let due = |id, url: &str, last_checked| DueRelay {
        id,
        url: url.to_owned(),
        network: Network::Clearnet,
        last_checked,
    };
    let cutoff = NOW - 3_600;
    let selected = select_due_relays(&fixture.brotr, &[Network::Clearnet], cutoff, 100, 0)
        .await
        .expect("selected");
    assert_eq!(
        selected,
        [
            due(never, "wss://never.example", None),
            due(staler, "wss://staler.example", Some(NOW - 7_200)),
            due(stale, "wss://stale.example", Some(NOW - 3_600)),
        ]
    );

    let limited = select_due_relays(&fixture.brotr, &[Network::Clearnet], cutoff, 2, 0)
        .await
        .expect("selected");
    assert_eq!(limited, selected[..2]);

    let both = select_due_relays(
        &fixture.brotr,
        &[Network::Clearnet, Network::Tor],
        cutoff,
        100,
        0,
    )
    .await
    .expect("selected");
    assert_eq!(both.len(), 4);
    assert_eq!(both[0].id.min(both[1].id), never.min(onion));
    assert_eq!(
        both.iter()
            .filter(|relay| relay.network == Network::Tor)
            .map(|relay| relay.id)
            .collect::<Vec<_>>(),
        [onion]
    );
    assert!(select_due_relays(&fixture.brotr, &[], cutoff, 100, 0)
        .await
        .expect("selected")
        .is_empty());
}

#[tokio::test]
async fn a_relay_checked_in_this_cycle_is_not_due_in_the_next() {
    let relay = TestRelay::start(builder(), Nip11::Body("{}")).await;
    let fixture = Fixture::new().await;
    fixture.relay(&relay.url).await;
    let monitor = monitor_with(&monitor_config());
    let first = monitor
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert_eq!(first.clearnet.stored, 1);
    let second = monitor
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert_eq!(second.total(), Default::default());
    assert_eq!(fixture.checks(&relay.url).await.len(), 1);
}

#[tokio::test]
async fn onion_relays_are_left_alone_without_a_proxy_and_checked_through_one() {
    let onion = "ws://2jsnlhfnelig5acq6iacydmzdbdmg7xwunm4xl6qwbvzacw4lwrjmlyd.onion";
    let fixture = Fixture::new().await;
    fixture.relay(onion).await;
    let config = monitor_config();

    let report = monitor_with(&config)
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert_eq!(report.total(), Default::default());
    assert!(fixture.checks(onion).await.is_empty());

    // A proxy that refuses every connection: the check fails, and is stored.
    let nostr = NostrConfig {
        socks5_proxy: Some(format!("127.0.0.1:{}", closed_port().await)),
        ..NostrConfig::default()
    };
    let monitor = Monitor::new(&config, &nostr, Keys::generate())
        .expect("a monitor")
        .with_egress(loopback_egress());
    let report = monitor
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert_eq!(
        (report.tor.due, report.tor.failed, report.tor.stored),
        (1, 1, 1)
    );
    assert_eq!(report.clearnet, Default::default());
    let stored = fixture.only_check(onion).await;
    assert!(!stored.connected);
    assert_eq!(stored.nip11, None);
    assert_eq!(stored.nip66, None);
}

#[tokio::test]
async fn a_cancelled_cycle_stores_what_was_measured_and_returns_at_once() {
    let relay = TestRelay::start(builder(), Nip11::Body("{}")).await;
    let silent = Silent::start().await;
    let fixture = Fixture::new().await;
    // Checked in id order, one at a time: the quick relay first.
    fixture.relay(&relay.url).await;
    fixture.relay(&silent.url).await;
    let closed = format!("ws://127.0.0.1:{}", closed_port().await);
    fixture.relay(&closed).await;
    let mut config = monitor_config();
    config.concurrency.clearnet = 1;
    config.timeouts.open = Duration::from_secs(10);
    config.timeouts.nip11 = Duration::from_secs(10);
    let monitor = monitor_with(&config);

    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let report = monitor
        .run_cycle(&fixture.brotr, &cancel)
        .await
        .expect("a cycle");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
    assert!(report.cancelled);
    assert_eq!(
        (
            report.clearnet.due,
            report.clearnet.checked,
            report.clearnet.stored
        ),
        (3, 1, 1)
    );
    assert_eq!(fixture.checks(&relay.url).await.len(), 1);
    assert!(fixture.checks(&silent.url).await.is_empty());
    assert!(fixture.checks(&closed).await.is_empty());

    // Cancelled before it starts: nothing is checked.
    let report = monitor
        .run_cycle(&fixture.brotr, &cancel)
        .await
        .expect("a cycle");
    assert!(report.cancelled);
    assert_eq!(report.clearnet.due, 2);
    assert_eq!(report.clearnet.checked, 0);
}

#[tokio::test]
async fn results_are_published_as_nip66_events_when_enabled() {
    let checked = TestRelay::start(builder(), Nip11::Body(r#"{"supported_nips":[1,11]}"#)).await;
    let publish_to = TestRelay::start(builder(), Nip11::Body("{}")).await;
    let fixture = Fixture::new().await;
    fixture.relay(&checked.url).await;
    let mut config = monitor_config();
    config.publish.enabled = true;
    config.publish.relays = vec![publish_to.url.clone()];
    let keys = Keys::generate();
    let nostr = NostrConfig {
        timeout: Duration::from_secs(3),
        ..NostrConfig::default()
    };
    let monitor = Monitor::new(&config, &nostr, keys.clone())
        .expect("a monitor")
        .with_egress(loopback_egress());
    let report = monitor
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert_eq!(report.published, 2);

    let discovery = publish_to
        .events(
            Filter::new()
                .kind(Kind::Custom(30166))
                .author(keys.public_key()),
        )
        .await;
    assert_eq!(discovery.len(), 1);
    let tags: Vec<Vec<String>> = discovery[0]
        .tags
        .iter()
        .map(|t| t.as_slice().to_vec())
        .collect();
    let url = checked.url.clone();
    assert_eq!(tags[0], ["d".to_owned(), url]);
    assert_eq!(tags[1], ["n", "clearnet"]);
    let names: Vec<&str> = tags.iter().map(|t| t[0].as_str()).collect();
    assert_eq!(
        names,
        ["d", "n", "rtt-open", "rtt-read", "rtt-write", "N", "N"]
    );
    let announcement = publish_to
        .events(
            Filter::new()
                .kind(Kind::Custom(10166))
                .author(keys.public_key()),
        )
        .await;
    assert_eq!(announcement.len(), 1);
}

/// Stores a check of `relay_id` made at `generated_at` whose NIP-66 document
/// says `readable`.
async fn readable_check_at(
    fixture: &Fixture,
    relay_id: RelayId,
    generated_at: i64,
    readable: bool,
) {
    let stored = fixture
        .brotr
        .insert_relay_metadata_batch(&[RelayMetadata {
            relay_id,
            generated_at,
            connected: true,
            nip11: None,
            nip66: Some(serde_json::json!({
                "network": "clearnet",
                "rtt_open": 10,
                "readable": readable,
                "rtt_read": readable.then_some(5),
            })),
        }])
        .await
        .expect("stored");
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn relays_once_readable_keep_their_share_of_a_cycle_among_never_checked_junk() {
    let fixture = Fixture::new().await;
    let port = closed_port().await;
    let now = bigbrotr_utils::now_timestamp();
    // Junk: never checked, so first in line, and more than a cycle takes.
    let mut junk = Vec::new();
    for index in 0..30 {
        let url = format!("ws://127.0.0.1:{port}/junk{index}");
        fixture.relay(&url).await;
        junk.push(url);
    }
    // Real relays due again: readable once, whatever their latest check says.
    let mut real = Vec::new();
    for index in 0..4 {
        let url = format!("ws://127.0.0.1:{port}/real{index}");
        let id = fixture.relay(&url).await;
        readable_check_at(&fixture, id, now - 20_000, true).await;
        if index % 2 == 0 {
            readable_check_at(&fixture, id, now - 10_000, false).await;
        }
        real.push(url);
    }
    // Checked before, never readable: no reserved place.
    let dull = format!("ws://127.0.0.1:{port}/dull");
    let dull_id = fixture.relay(&dull).await;
    readable_check_at(&fixture, dull_id, now - 30_000, false).await;

    let cutoff = now - 3_600;
    let urls = |relays: &[DueRelay]| relays.iter().map(|r| r.url.clone()).collect::<Vec<_>>();
    let oldest_first = select_due_relays(&fixture.brotr, &[Network::Clearnet], cutoff, 10, 0)
        .await
        .expect("selected");
    assert_eq!(urls(&oldest_first), junk[..10]);
    let shared = select_due_relays(&fixture.brotr, &[Network::Clearnet], cutoff, 10, 5)
        .await
        .expect("selected");
    // The four real relays (less than their five places), then junk; in
    // the usual order: never checked first, then the longest unchecked.
    let mut expected = junk[..6].to_vec();
    expected.extend([
        real[1].clone(),
        real[3].clone(),
        real[0].clone(),
        real[2].clone(),
    ]);
    assert_eq!(urls(&shared), expected);
    let few = select_due_relays(&fixture.brotr, &[Network::Clearnet], cutoff, 3, 2)
        .await
        .expect("selected");
    assert_eq!(
        urls(&few),
        [junk[0].clone(), real[1].clone(), real[3].clone()]
    );

    // A cycle checks the real relays despite the junk.
    let mut config = monitor_config();
    config.max_relays_per_cycle = 10;
    config.readable_share_percent = 50;
    let report = monitor_with(&config)
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert_eq!(
        (
            report.clearnet.due,
            report.clearnet.checked,
            report.clearnet.stored
        ),
        (10, 10, 10)
    );
    for url in &real {
        let checks = fixture.checks(url).await;
        assert!(
            checks.last().is_some_and(|check| check.generated_at >= now),
            "{url} was not checked: {checks:?}"
        );
    }
    assert_eq!(fixture.checks(&dull).await.len(), 1);
}
