//! Relays that misbehave: bad events are rejected and counted, a relay
//! serving too many is cut off, and silent or endless relays are left
//! behind by their timeouts without holding the others up.

use std::time::Duration;

use bigbrotr_config::BrotrConfig;
use bigbrotr_synchronizer::{Cursor, FetchError, Rejections, RelayOutcome};
use nostr::{Event, JsonUtil, Keys};
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::support::{
    ids, json_of, note, notes, sync_config, synchronizer, FakeRelay, Fixture, Script, Silent,
    TestRelay, BASE,
};

/// A script serving 9 good notes (one of them twice), 3 altered ones, 2
/// signed by the wrong key, 2 of a kind not asked for, and, with the first
/// answer, one note from outside the window and one broken event.
fn bad_script(keys: &Keys) -> (Script, Vec<Event>) {
    let good = notes(keys, 9, 10, 10);
    let mut events: Vec<(i64, String)> = good
        .iter()
        .map(|event| {
            (
                i64::try_from(event.created_at.as_secs()).unwrap(),
                json_of(event),
            )
        })
        .collect();
    events.push(events[0].clone());
    for i in 0..3 {
        let event = note(keys, 1, BASE + 200 + i, "original");
        let altered = json_of(&event).replace("original", "altered!");
        events.push((BASE + 200 + i, altered));
    }
    let other = Keys::generate();
    for i in 0..2 {
        let event = note(keys, 1, BASE + 300 + i, "mine");
        let forged = note(&other, 1, BASE + 300 + i, "mine");
        let mut value: Value = serde_json::from_str(&json_of(&event)).unwrap();
        value["sig"] = Value::from(forged.sig.to_string());
        events.push((BASE + 300 + i, value.to_string()));
    }
    for i in 0..2 {
        let reaction = note(keys, 7, BASE + 400 + i, "+");
        events.push((BASE + 400 + i, reaction.as_json()));
    }
    let script = Script {
        events,
        first_req_extra: vec![
            json_of(&note(keys, 1, BASE - 10_000, "too early")),
            r#"{"id":"zz","kind":"one"}"#.to_owned(),
        ],
        ..Script::default()
    };
    (script, good)
}

#[tokio::test]
async fn bad_signatures_and_events_outside_the_filter_are_rejected_and_counted() {
    let keys = Keys::generate();
    let (script, good) = bad_script(&keys);
    let relay = FakeRelay::start(script).await;
    // Checked by the archive, and, with its validation off, by the
    // synchronizer itself.
    for enable_event_validation in [true, false] {
        let fixture = Fixture::with(BrotrConfig {
            enable_event_validation,
            ..BrotrConfig::default()
        })
        .await;
        let relay_id = fixture.readable(&relay.url, None).await;
        let mut config = sync_config("w1");
        config.filter.kinds = vec![1];
        config.window = Duration::from_secs(86_400);
        let report = synchronizer(&config)
            .run_cycle(&fixture.brotr, &CancellationToken::new())
            .await
            .expect("a cycle");
        let relay_report = report.relay(relay_id).expect("synced");
        assert_eq!(relay_report.outcome, RelayOutcome::CaughtUp);
        let counts = relay_report.counts;
        assert_eq!(
            counts.rejected,
            Rejections {
                invalid_id: 3,
                invalid_signature: 2,
                out_of_range: 0,
                outside_window: 1,
                filter_mismatch: 2,
                // Served twice more by the page that checks the relay's cap.
                repeated: 2,
                malformed: 1,
                oversized: 0,
            },
            "validation by the archive: {enable_event_validation}"
        );
        assert_eq!(counts.received, 9 + 1 + 3 + 2 + 2 + 1 + 1 + 2);
        assert_eq!(counts.stored, 9);
        assert_eq!(fixture.event_count().await, 9);
        assert_eq!(fixture.relay_event_ids(relay_id).await, ids(&good));
        assert_eq!(report.cut_off(), 0);
    }
}

#[tokio::test]
async fn a_relay_serving_more_rejected_events_than_allowed_is_cut_off_and_counted() {
    let keys = Keys::generate();
    let (script, good) = bad_script(&keys);
    let relay = FakeRelay::start(script).await;
    let fixture = Fixture::new().await;
    let relay_id = fixture.readable(&relay.url, None).await;
    let mut config = sync_config("w1");
    config.filter.kinds = vec![1];
    config.window = Duration::from_secs(86_400);
    config.max_rejected = 3;

    let report = synchronizer(&config)
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert_eq!(report.cut_off(), 1);
    let relay_report = report.relay(relay_id).expect("synced");
    assert_eq!(relay_report.outcome, RelayOutcome::CutOff);
    // The window is finished (its first answer, then the page checking the
    // relay's cap), then nothing more is asked.
    assert_eq!(
        relay_report.counts.requests, 2,
        "nothing asked after the cut"
    );
    assert_eq!(relay_report.counts.windows, 1);
    assert_eq!(relay_report.counts.rejected.total(), 11);
    // The good events it served are kept, and the cursor passed the window.
    assert_eq!(fixture.relay_event_ids(relay_id).await, ids(&good));
    let (cursor, _) = fixture.cursor(relay_id).await;
    assert_eq!(cursor, Some(Cursor::end_of(BASE + 86_399)));
}

#[tokio::test]
async fn silent_slow_and_endless_relays_are_left_behind_without_holding_up_the_others() {
    let keys = Keys::generate();
    let events = notes(&keys, 300, 0, 60);
    let healthy = TestRelay::start(&events, None).await;
    let mute = Silent::start().await;
    let idle = FakeRelay::start(Script {
        silent: true,
        ..Script::default()
    })
    .await;
    let endless = FakeRelay::start(Script {
        drip: true,
        ..Script::default()
    })
    .await;
    let fixture = Fixture::new().await;
    let healthy_id = fixture.readable(&healthy.url, None).await;
    let mute_id = fixture.readable(&mute.url, None).await;
    let idle_id = fixture.readable(&idle.url, None).await;
    let endless_id = fixture.readable(&endless.url, None).await;
    let mut config = sync_config("w1");
    config.timeouts.idle = Duration::from_secs(1);
    config.timeouts.request = Duration::from_secs(2);

    let started = Instant::now();
    let report = synchronizer(&config)
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    let outcome = |id| report.relay(id).expect("synced").outcome.clone();
    assert_eq!(outcome(healthy_id), RelayOutcome::CaughtUp);
    assert!(
        matches!(
            outcome(mute_id),
            RelayOutcome::Failed(FetchError::Connect(_))
        ),
        "{:?}",
        outcome(mute_id)
    );
    assert_eq!(
        outcome(idle_id),
        RelayOutcome::Failed(FetchError::IdleTimeout)
    );
    assert_eq!(
        outcome(endless_id),
        RelayOutcome::Failed(FetchError::RequestTimeout)
    );
    assert_eq!(report.failed(), 3);
    assert_eq!(fixture.relay_event_ids(healthy_id).await, ids(&events));
    // A relay that failed keeps no cursor, and is released.
    for id in [mute_id, idle_id, endless_id] {
        assert_eq!(fixture.cursor(id).await, (None, None));
    }
}

#[tokio::test]
async fn a_relay_cut_short_by_its_total_time_continues_in_the_next_cycle() {
    let keys = Keys::generate();
    let events = notes(&keys, 2_000, 0, 5);
    let relay = TestRelay::start(&events, None).await;
    let fixture = Fixture::new().await;
    let relay_id = fixture.readable(&relay.url, None).await;
    let mut config = sync_config("w1");
    config.limit = 10;
    config.second_limit = 10;
    config.batch_size = 20;
    config.timeouts.total = Duration::from_millis(150);
    let sync = synchronizer(&config);
    let mut cycles = 0;
    loop {
        cycles += 1;
        assert!(cycles < 200, "no end in sight");
        let report = sync
            .run_cycle(&fixture.brotr, &CancellationToken::new())
            .await
            .expect("a cycle");
        let outcome = &report.relay(relay_id).expect("synced").outcome;
        assert_eq!(report.totals.duplicates, 0);
        if *outcome == RelayOutcome::CaughtUp {
            break;
        }
        assert_eq!(*outcome, RelayOutcome::TimeUp);
    }
    assert!(cycles > 1, "the time limit never hit");
    assert_eq!(fixture.relay_event_ids(relay_id).await, ids(&events));
}

#[tokio::test]
async fn onion_relays_are_left_alone_without_a_proxy_and_reached_through_one() {
    let onion = "ws://2jsnlhfnelig5acq6iacydmzdbdmg7xwunm4xl6qwbvzacw4lwrjmlyd.onion";
    let fixture = Fixture::new().await;
    let onion_id = fixture.readable(onion, None).await;
    let config = sync_config("w1");

    let report = synchronizer(&config)
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert!(report.relays.is_empty());

    // A proxy that refuses every connection: the relay is tried through it.
    let port = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let nostr = bigbrotr_config::NostrConfig {
        socks5_proxy: Some(format!("127.0.0.1:{port}")),
        timeout: Duration::from_secs(2),
    };
    let sync = bigbrotr_synchronizer::Synchronizer::new(&config, &nostr).expect("valid");
    let report = sync
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    let outcome = &report.relay(onion_id).expect("tried").outcome;
    assert!(
        matches!(outcome, RelayOutcome::Failed(FetchError::Connect(_))),
        "{outcome:?}"
    );
    assert_eq!(fixture.cursor(onion_id).await, (None, None));
}
