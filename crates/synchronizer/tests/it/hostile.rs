//! Hostile relays cannot stop the archive or make it lose good events:
//! messages over the size limit, events over the event limit, garbage and
//! forged copies mixed with valid events, and batches the archive refuses.

use bigbrotr_synchronizer::{RelayOutcome, SynchronizerConfig};
use nostr::{Event, Keys};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::support::{
    ids, json_of, note, notes, sync_config, synchronizer, FakeRelay, Fixture, Script, TestRelay,
    BASE,
};

/// Limits small enough to be broken by a test relay.
fn small_limits(nip77: bool) -> SynchronizerConfig {
    let mut config = sync_config("w1");
    config.nip77.enabled = nip77;
    config.sizes.max_message = 1 << 20;
    config.sizes.max_frame = 1 << 20;
    config.sizes.max_event = 512 << 10;
    config.sizes.batch_bytes = 1 << 20;
    config.sizes.held_bytes = 4 << 20;
    config
}

/// `(created_at, JSON)` of `events`, as the fake relay serves them.
fn scripted(events: &[Event]) -> Vec<(i64, String)> {
    events
        .iter()
        .map(|event| {
            (
                i64::try_from(event.created_at.as_secs()).expect("small"),
                json_of(event),
            )
        })
        .collect()
}

/// The rows of `quarantine`: `(created_at, has an id, reason)`.
async fn quarantined(fixture: &Fixture) -> Vec<(Option<i64>, bool, String)> {
    let rows = fixture
        .brotr
        .pool()
        .fetch_all(
            "SELECT created_at, event_id IS NOT NULL, reason FROM quarantine ORDER BY created_at",
            &[],
        )
        .await
        .expect("read");
    rows.iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect()
}

#[tokio::test]
async fn oversized_messages_and_events_are_skipped_and_every_other_event_is_archived() {
    let keys = Keys::generate();
    let normal = notes(&keys, 1_500, 0, 57);
    let huge = "x".repeat(1_500_000);
    let large = "y".repeat(700_000);
    // Three messages over the WebSocket limit, one event over the event
    // limit, each alone in its second.
    let giants: Vec<Event> = [1_001, 30_003, 60_007]
        .iter()
        .map(|offset| note(&keys, 1, BASE + offset, &huge))
        .collect();
    let big = note(&keys, 1, BASE + 45_005, &large);
    let mut all = normal.clone();
    all.extend(giants.iter().cloned());
    all.push(big.clone());

    for nip77 in [false, true] {
        let fixture = Fixture::new().await;
        let (url, _relay_guard): (String, Box<dyn std::any::Any + Send>) = if nip77 {
            let relay = TestRelay::start(&all, None).await;
            (relay.url.clone(), Box::new(relay))
        } else {
            let relay = FakeRelay::start(Script {
                events: scripted(&all),
                ..Script::default()
            })
            .await;
            (relay.url.clone(), Box::new(relay))
        };
        let relay_id = fixture.readable(&url, None).await;
        let report = synchronizer(&small_limits(nip77))
            .run_cycle(&fixture.brotr, &CancellationToken::new())
            .await
            .expect("a cycle");
        let relay = report.relay(relay_id).expect("synced");
        assert_eq!(relay.outcome, RelayOutcome::CaughtUp, "nip77 {nip77}");
        assert_eq!(
            fixture.relay_event_ids(relay_id).await,
            ids(&normal),
            "nip77 {nip77}: every normal event, none of the large ones"
        );
        let (cursor, _) = fixture.cursor(relay_id).await;
        assert!(cursor.expect("a cursor").created_at > BASE + 60_007);
        let rows = quarantined(&fixture).await;
        assert_eq!(rows.len(), 4, "nip77 {nip77}: {rows:?}");
        let big_row = rows
            .iter()
            .find(|(second, _, _)| *second == Some(BASE + 45_005))
            .expect("the large event");
        assert!(big_row.1 && big_row.2 == "oversized", "{big_row:?}");
        let too_large: Vec<_> = rows
            .iter()
            .filter(|(_, _, reason)| reason.starts_with("message_too_large"))
            .collect();
        assert_eq!(too_large.len(), 3, "{rows:?}");
        for (offset, row) in [1_001, 30_003, 60_007].iter().zip(&too_large) {
            if nip77 {
                // Found by id, halving the ids asked for.
                assert!(row.1, "{row:?}");
            } else {
                // Found by its second, halving the window.
                assert_eq!(row.0, Some(BASE + offset), "{row:?}");
            }
        }
        assert_eq!(relay.counts.rejected.oversized, 4);
    }
}

#[tokio::test]
async fn garbage_and_forged_copies_do_not_cost_a_single_valid_event() {
    let keys = Keys::generate();
    let valid = notes(&keys, 1_000, 0, 80);
    let forger = Keys::generate();
    let mut served = Vec::new();
    for (i, event) in valid.iter().enumerate() {
        let created_at = i64::try_from(event.created_at.as_secs()).expect("small");
        if i % 2 == 0 {
            // A forged copy first: the same id, someone else's signature.
            let forged = note(&forger, 1, created_at, "forged");
            let mut value: Value = serde_json::from_str(&json_of(event)).expect("json");
            value["sig"] = Value::from(forged.sig.to_string());
            served.push((created_at, value.to_string()));
        } else {
            served.push((created_at, r#"{"id":"garbage","kind":"x"}"#.to_owned()));
        }
        served.push((created_at, json_of(event)));
    }
    let relay = FakeRelay::start(Script {
        events: served,
        ..Script::default()
    })
    .await;
    let fixture = Fixture::new().await;
    let relay_id = fixture.readable(&relay.url, None).await;
    let mut config = sync_config("w1");
    config.nip77.enabled = false;
    config.max_rejected = 100;
    let sync = synchronizer(&config);
    let mut cycles = 0;
    loop {
        cycles += 1;
        assert!(cycles <= 40, "no end in sight");
        let report = sync
            .run_cycle(&fixture.brotr, &CancellationToken::new())
            .await
            .expect("a cycle");
        let outcome = &report.relay(relay_id).expect("synced").outcome;
        if *outcome == RelayOutcome::CaughtUp {
            break;
        }
        assert_eq!(*outcome, RelayOutcome::CutOff);
    }
    assert!(cycles > 1, "cut off at least once");
    assert_eq!(fixture.relay_event_ids(relay_id).await, ids(&valid));
}

#[tokio::test]
async fn events_the_archive_refuses_are_quarantined_and_the_rest_of_the_batch_is_stored() {
    let keys = Keys::generate();
    let mut events = notes(&keys, 300, 0, 30);
    let poison: Vec<Event> = (0..2)
        .map(|i| note(&keys, 1, BASE + 5_000 + i, "poison"))
        .collect();
    events.extend(poison.iter().cloned());
    let other_events = notes(&Keys::generate(), 200, 0, 45);
    let relay = TestRelay::start(&events, None).await;
    let other = TestRelay::start(&other_events, None).await;
    let fixture = Fixture::new().await;
    // The archive refuses these two events, as it would an event it cannot
    // hold.
    fixture
        .brotr
        .pool()
        .execute(
            "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.content = 'poison' THEN \
               RAISE EXCEPTION 'poisoned event' USING ERRCODE = 'check_violation'; \
             END IF; RETURN NEW; END $$",
            &[],
        )
        .await
        .expect("function");
    fixture
        .brotr
        .pool()
        .execute(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON events \
             FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
            &[],
        )
        .await
        .expect("trigger");
    let relay_id = fixture.readable(&relay.url, None).await;
    let other_id = fixture.readable(&other.url, None).await;
    let mut config = sync_config("w1");
    config.batch_size = 100;
    let report = synchronizer(&config)
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("the cycle goes on");
    let counts = report.relay(relay_id).expect("synced").counts;
    assert_eq!(counts.quarantined, 2, "{counts:?}");
    assert_eq!(fixture.relay_event_ids(relay_id).await, ids(&events[..300]));
    assert_eq!(fixture.relay_event_ids(other_id).await, ids(&other_events));
    let rows = quarantined(&fixture).await;
    assert_eq!(rows.len(), 2);
    for (second, has_id, reason) in rows {
        assert!(second.is_some() && has_id, "{reason}");
        assert!(reason.contains("poisoned event"), "{reason}");
    }
}

#[tokio::test]
async fn relays_sending_huge_messages_fail_alone_and_the_others_are_archived_whole() {
    let keys = Keys::generate();
    let events = notes(&keys, 500, 0, 60);
    let good = TestRelay::start(&events, None).await;
    // Each holds, among a few normal events, one event of 64 MiB: far over
    // the default 5 MiB message limit.
    let giant = note(&keys, 1, BASE + 7_777, &"z".repeat(64 << 20));
    let mut hostile = Vec::new();
    for _ in 0..3 {
        let mut served = scripted(&events[..50]);
        served.push((BASE + 7_777, json_of(&giant)));
        hostile.push(
            FakeRelay::start(Script {
                events: served,
                ..Script::default()
            })
            .await,
        );
    }
    let fixture = Fixture::new().await;
    let good_id = fixture.readable(&good.url, None).await;
    for relay in &hostile {
        fixture.readable(&relay.url, None).await;
    }
    let mut config = sync_config("w1");
    config.nip77.enabled = false;
    let report = synchronizer(&config)
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert_eq!(report.relays.len(), 4);
    assert_eq!(
        report.relay(good_id).expect("synced").outcome,
        RelayOutcome::CaughtUp
    );
    assert_eq!(fixture.relay_event_ids(good_id).await, ids(&events));
    // The hostile relays' huge message is found and skipped, their other
    // events archived.
    let rows = quarantined(&fixture).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|(second, _, reason)| {
        *second == Some(BASE + 7_777) && reason.starts_with("message_too_large")
    }));
    for relay in &report.relays {
        assert_eq!(relay.outcome, RelayOutcome::CaughtUp, "{}", relay.url);
    }
    assert_eq!(fixture.event_count().await, 500);
}

#[tokio::test]
async fn a_relay_whose_name_resolves_to_a_denied_address_is_never_connected_to() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use bigbrotr_synchronizer::FetchError;
    use bigbrotr_utils::{Egress, EgressPolicy, StaticResolver};

    // An internal service on a loopback port the policy does not allow,
    // counting the connections it gets.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("an address").port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connections);
    let server = tokio::spawn(async move {
        while let Ok((_stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    let fixture = Fixture::new().await;
    let by_name = fixture
        .readable(&format!("ws://relay.internal.example:{port}"), None)
        .await;
    let by_address = fixture
        .readable(&format!("ws://127.0.0.1:{port}"), None)
        .await;
    let resolver =
        StaticResolver::new().with("relay.internal.example", ["127.0.0.1".parse().expect("IP")]);
    let egress = Egress::new(EgressPolicy::strict()).with_resolver(Arc::new(resolver));
    let report = synchronizer(&sync_config("w1"))
        .with_egress(egress)
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    for relay_id in [by_name, by_address] {
        let outcome = &report.relay(relay_id).expect("tried").outcome;
        assert!(
            matches!(outcome, RelayOutcome::Failed(FetchError::Denied(reason)) if reason.contains("loopback")),
            "{outcome:?}"
        );
    }
    assert_eq!(connections.load(Ordering::SeqCst), 0);
    server.abort();
}

#[tokio::test]
async fn relays_sharing_a_small_bound_on_held_bytes_are_all_archived() {
    let mut relays = Vec::new();
    let mut all = Vec::new();
    for k in 0..3 {
        let keys = Keys::generate();
        let content = "m".repeat(100_000);
        let events: Vec<Event> = (0..30)
            .map(|i| {
                note(
                    &keys,
                    1,
                    BASE + k * 1_000 + i * 20,
                    &format!("{content}{i}"),
                )
            })
            .collect();
        relays.push(TestRelay::start(&events, None).await);
        all.push(events);
    }
    let fixture = Fixture::new().await;
    let mut relay_ids = Vec::new();
    for relay in &relays {
        relay_ids.push(fixture.readable(&relay.url, None).await);
    }
    let mut config = small_limits(false);
    // Room for four batches of about two events, for three relays at once:
    // they take turns.
    config.sizes.batch_bytes = 256 << 10;
    config.sizes.held_bytes = 1 << 20;
    let report = synchronizer(&config)
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    for (relay_id, events) in relay_ids.iter().zip(&all) {
        let relay = report.relay(*relay_id).expect("synced");
        assert_eq!(relay.outcome, RelayOutcome::CaughtUp);
        assert_eq!(fixture.relay_event_ids(*relay_id).await, ids(events));
    }
}
