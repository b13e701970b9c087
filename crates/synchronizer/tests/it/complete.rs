//! Everything a relay holds is archived, whatever it caps, delays or
//! backdates: relays capping silently or below their NIP-11 `max_limit`,
//! honest relays without overfetching, events reaching a relay behind the
//! cursor, NIP-77 reconciliation and its fallbacks, NIP-42 authentication.

use std::time::Duration;

use bigbrotr_synchronizer::{FetchError, RelayOutcome, SynchronizerConfig};
use nostr::{Event, Keys};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::{
    ids, json_of, note, notes, sync_config, synchronizer, FakeRelay, Fixture, Nip77Answer, Script,
    TestRelay, BASE,
};

/// The test configuration, reconciling (NIP-77) or not.
fn config(nip77: bool) -> SynchronizerConfig {
    let mut config = sync_config("w1");
    config.nip77.enabled = nip77;
    config
}

#[tokio::test]
async fn a_relay_capping_silently_below_the_limit_is_archived_whole() {
    let keys = Keys::generate();
    // 5 000 events over a day; the relay returns at most 100 per REQ and
    // says nothing of it, while 500 are asked for.
    let events = notes(&keys, 5_000, 0, 17);
    let relay = TestRelay::start(&events, Some(100)).await;
    for nip77 in [false, true] {
        let fixture = Fixture::new().await;
        let relay_id = fixture.readable(&relay.url, None).await;
        let report = synchronizer(&config(nip77))
            .run_cycle(&fixture.brotr, &CancellationToken::new())
            .await
            .expect("a cycle");
        let relay_report = report.relay(relay_id).expect("synced");
        assert_eq!(relay_report.outcome, RelayOutcome::CaughtUp);
        let counts = relay_report.counts;
        assert_eq!(counts.stored, 5_000, "nip77 {nip77}: {counts:?}");
        assert_eq!(counts.pending_added, 0);
        assert!(
            counts.received * 10 <= 5_000 * 12,
            "nip77 {nip77}: at most 20 % received twice: {counts:?}"
        );
        assert_eq!(fixture.relay_event_ids(relay_id).await, ids(&events));
        let state = fixture.state(relay_id).await;
        assert_eq!(state.effective_cap, Some(100), "the cap is learned");
        assert_eq!(state.nip77, nip77.then_some(true));
        if nip77 {
            assert!(counts.reconciliations > 0);
            assert_eq!(counts.stored_by_reconcile, 5_000);
        }
    }
}

#[tokio::test]
async fn a_nip11_max_limit_larger_than_what_the_relay_serves_is_not_trusted() {
    let keys = Keys::generate();
    let events = notes(&keys, 3_000, 0, 29);
    let relay = TestRelay::start(&events, Some(200)).await;
    let fixture = Fixture::new().await;
    let nip11 = json!({"limitation": {"max_limit": 1000}});
    let relay_id = fixture.readable(&relay.url, Some(nip11)).await;
    let mut config = config(false);
    config.limit = 1000;
    let report = synchronizer(&config)
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    let counts = report.relay(relay_id).expect("synced").counts;
    assert_eq!(counts.stored, 3_000, "{counts:?}");
    assert_eq!(fixture.relay_event_ids(relay_id).await, ids(&events));
    assert_eq!(fixture.state(relay_id).await.effective_cap, Some(200));
}

#[tokio::test]
async fn honest_relays_are_not_fetched_twice_whatever_the_time_distribution() {
    let keys = Keys::generate();
    // Spread over a day; and dense after a year of nothing.
    let spread = notes(&keys, 2_000, 0, 43);
    let mut dense = vec![note(&keys, 1, BASE, "alone")];
    dense.extend(notes(&keys, 2_000, 365 * 86_400, 1));
    for events in [spread, dense] {
        let relay = TestRelay::start(&events, None).await;
        let fixture = Fixture::new().await;
        let relay_id = fixture.readable(&relay.url, None).await;
        let report = synchronizer(&config(false))
            .run_cycle(&fixture.brotr, &CancellationToken::new())
            .await
            .expect("a cycle");
        let counts = report.relay(relay_id).expect("synced").counts;
        let archived = events.len() as u64;
        assert_eq!(counts.stored, archived, "{counts:?}");
        assert!(
            counts.received * 10 <= archived * 12,
            "received at most 1.2 times what is archived: {counts:?}"
        );
        assert_eq!(fixture.relay_event_ids(relay_id).await, ids(&events));
    }
}

#[tokio::test]
async fn events_backdated_behind_the_cursor_are_archived_by_the_next_resweep() {
    let keys = Keys::generate();
    let now = bigbrotr_utils::now_timestamp();
    let early: Vec<Event> = (0..500)
        .map(|i| note(&keys, 1, now - 3 * 86_400 + i * 400, &format!("early {i}")))
        .collect();
    // Created 30 h ago, reaching the relay after the first sync.
    let late: Vec<Event> = (0..300)
        .map(|i| note(&keys, 1, now - 30 * 3_600 + i, &format!("late {i}")))
        .collect();
    for nip77 in [false, true] {
        let relay = TestRelay::start(&early, None).await;
        let fixture = Fixture::new().await;
        let relay_id = fixture.readable(&relay.url, None).await;
        let mut config = config(nip77);
        config.resweep.interval = Duration::ZERO;
        let sync = synchronizer(&config);
        let first = sync
            .run_cycle(&fixture.brotr, &CancellationToken::new())
            .await
            .expect("a cycle");
        assert_eq!(first.totals.stored, 500);
        assert_eq!(first.totals.resweeps, 0, "a first walk needs none");
        relay.add(&late).await;

        let second = sync
            .run_cycle(&fixture.brotr, &CancellationToken::new())
            .await
            .expect("a cycle");
        let counts = second.relay(relay_id).expect("synced").counts;
        assert_eq!(counts.resweeps, 1, "nip77 {nip77}: {counts:?}");
        assert_eq!(counts.stored_by_resweep, 300, "nip77 {nip77}: {counts:?}");
        assert_eq!(counts.stored, 300);
        let mut all = early.clone();
        all.extend(late.iter().cloned());
        assert_eq!(fixture.relay_event_ids(relay_id).await, ids(&all));
        if nip77 {
            // Reconciled: only the late events are downloaded.
            assert_eq!(counts.received, 300, "{counts:?}");
        }
    }
}

#[tokio::test]
async fn relays_answering_neg_open_with_an_error_a_notice_or_nothing_are_walked_with_reqs() {
    let keys = Keys::generate();
    let events = notes(&keys, 200, 0, 60);
    let script_events: Vec<(i64, String)> = events
        .iter()
        .map(|event| {
            (
                i64::try_from(event.created_at.as_secs()).expect("small"),
                json_of(event),
            )
        })
        .collect();
    for answer in [
        Nip77Answer::NegErr,
        Nip77Answer::Notice,
        Nip77Answer::Silent,
    ] {
        let relay = FakeRelay::start(Script {
            events: script_events.clone(),
            nip77: answer,
            ..Script::default()
        })
        .await;
        let fixture = Fixture::new().await;
        let relay_id = fixture.readable(&relay.url, None).await;
        let mut config = config(true);
        config.timeouts.idle = Duration::from_secs(1);
        let report = synchronizer(&config)
            .run_cycle(&fixture.brotr, &CancellationToken::new())
            .await
            .expect("a cycle");
        let relay_report = report.relay(relay_id).expect("synced");
        assert_eq!(relay_report.outcome, RelayOutcome::CaughtUp, "{answer:?}");
        assert_eq!(relay_report.counts.reconciliations, 0);
        assert_eq!(fixture.relay_event_ids(relay_id).await, ids(&events));
        let state = fixture.state(relay_id).await;
        assert_eq!(state.nip77, Some(false), "{answer:?}");
        assert!(state.nip77_checked_at.is_some());

        // Remembered: not probed again before `nip77.recheck` (a probe a
        // second later would record a later time).
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let again = synchronizer(&config)
            .run_cycle(&fixture.brotr, &CancellationToken::new())
            .await
            .expect("a cycle");
        assert_eq!(again.totals.reconciliations, 0);
        assert_eq!(
            fixture.state(relay_id).await.nip77_checked_at,
            state.nip77_checked_at,
            "{answer:?}: not probed again"
        );
    }
}

#[tokio::test]
async fn a_relay_requiring_authentication_is_archived_after_the_archiver_authenticates() {
    let keys = Keys::generate();
    let events = notes(&keys, 300, 0, 60);
    let relay = TestRelay::with(&events, None, true).await;
    for nip77 in [false, true] {
        let fixture = Fixture::new().await;
        let relay_id = fixture.readable(&relay.url, None).await;
        let report = synchronizer(&config(nip77))
            .run_cycle(&fixture.brotr, &CancellationToken::new())
            .await
            .expect("a cycle");
        let relay_report = report.relay(relay_id).expect("synced");
        assert_eq!(
            relay_report.outcome,
            RelayOutcome::CaughtUp,
            "nip77 {nip77}"
        );
        assert_eq!(fixture.relay_event_ids(relay_id).await, ids(&events));
        assert_eq!(fixture.state(relay_id).await.auth_refused_at, None);
    }
}

#[tokio::test]
async fn a_relay_refusing_the_authentication_is_recorded_and_not_asked_again_at_once() {
    let relay = FakeRelay::start(Script {
        refuse_auth: true,
        ..Script::default()
    })
    .await;
    let fixture = Fixture::new().await;
    let relay_id = fixture.readable(&relay.url, None).await;
    let sync = synchronizer(&config(false));
    let report = sync
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    let outcome = &report.relay(relay_id).expect("synced").outcome;
    assert!(
        matches!(outcome, RelayOutcome::Failed(FetchError::AuthRefused(reason)) if reason.starts_with("auth-required:")),
        "{outcome:?}"
    );
    assert!(fixture.state(relay_id).await.auth_refused_at.is_some());

    let again = sync
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    let outcome = &again.relay(relay_id).expect("synced").outcome;
    assert!(
        matches!(outcome, RelayOutcome::Failed(FetchError::AuthRequired(_))),
        "not signed again: {outcome:?}"
    );
}

#[tokio::test]
async fn a_nip77_relay_of_many_events_is_archived_whole_and_a_second_pass_downloads_nothing() {
    let keys = Keys::generate();
    let events = notes(&keys, 20_000, 0, 3);
    let relay = TestRelay::start(&events, None).await;
    let fixture = Fixture::new().await;
    let relay_id = fixture.readable(&relay.url, None).await;
    let mut config = config(true);
    config.resweep.interval = Duration::ZERO;
    let sync = synchronizer(&config);
    let report = sync
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    let counts = report.relay(relay_id).expect("synced").counts;
    assert_eq!(counts.stored, 20_000, "{counts:?}");
    assert_eq!(counts.received, 20_000, "each event downloaded once");
    assert_eq!(fixture.relay_event_ids(relay_id).await, ids(&events));

    // The archive forgets the cursor: a second pass over the whole relay
    // reconciles and downloads nothing.
    fixture
        .brotr
        .pool()
        .execute(
            "UPDATE sync_cursors SET created_at = NULL, event_id = NULL, filter_hash = NULL",
            &[],
        )
        .await
        .expect("reset");
    let again = sync
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    let counts = again.relay(relay_id).expect("synced").counts;
    assert_eq!(counts.received, 0, "{counts:?}");
    assert_eq!(counts.requests, 0);
    assert!(counts.reconciliations > 0);
}
