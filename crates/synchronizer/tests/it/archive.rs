//! Archiving: exact counts over overlapping relays, windows paged while an
//! answer may have been cut short, and seconds holding more events than a
//! relay returns at once.

use bigbrotr_synchronizer::{Cursor, RelayOutcome};
use nostr::Keys;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::{ids, note, notes, sync_config, synchronizer, Fixture, TestRelay, BASE};

#[tokio::test]
async fn twenty_thousand_events_over_two_overlapping_relays_are_archived_exactly() {
    let keys = Keys::generate();
    let events = notes(&keys, 20_000, 0, 30);
    let first = TestRelay::start(&events[..14_000], None).await;
    let second = TestRelay::start(&events[6_000..], None).await;
    let fixture = Fixture::new().await;
    let first_id = fixture.readable(&first.url, None).await;
    let second_id = fixture.readable(&second.url, None).await;
    let sync = synchronizer(&sync_config("w1"));

    let report = sync
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert!(!report.cancelled);
    assert_eq!(report.relays.len(), 2);
    let totals = report.totals;
    assert_eq!(totals.stored, 20_000);
    // Both relays are reconciled (NIP-77) at once: an event the other relay
    // stored first is either downloaded again or recorded as a sighting.
    assert_eq!(totals.duplicates + totals.sightings, 8_000, "{totals:?}");
    assert_eq!(totals.relations + totals.sightings, 28_000, "{totals:?}");
    assert_eq!(totals.rejected.total(), 0);
    assert_eq!(totals.pending_added, 0);
    assert_eq!(
        totals.received,
        totals.stored + totals.duplicates,
        "{totals:?}"
    );
    assert_eq!(fixture.event_count().await, 20_000);
    assert_eq!(fixture.relay_event_count(first_id).await, 14_000);
    assert_eq!(fixture.relay_event_count(second_id).await, 14_000);
    assert_eq!(
        fixture.relay_event_ids(first_id).await,
        ids(&events[..14_000])
    );
    assert_eq!(
        fixture.relay_event_ids(second_id).await,
        ids(&events[6_000..])
    );
    for relay in &report.relays {
        assert_eq!(relay.outcome, RelayOutcome::CaughtUp, "{relay:?}");
        assert_eq!(relay.lag, Some(0));
        let (cursor, lease) = fixture.cursor(relay.relay_id).await;
        assert_eq!(cursor, relay.cursor);
        assert_eq!(cursor.expect("a cursor").event_id, None);
        assert_eq!(lease, None, "the lease is released");
    }

    // Nothing new: the next cycle starts at the cursors and finds nothing.
    let again = sync
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert_eq!(again.relays.len(), 2);
    assert_eq!(again.totals.received, 0);
    assert_eq!(again.totals.stored, 0);
    assert_eq!(again.totals.requests, 0, "reconciled, nothing asked for");
    assert_eq!(fixture.event_count().await, 20_000);
}

#[tokio::test]
async fn a_small_limit_or_an_advertised_cap_is_paged_through_and_nothing_is_missed() {
    let keys = Keys::generate();
    let events = notes(&keys, 1_000, 0, 7);
    // Asked for few events at a time.
    let asked = TestRelay::start(&events, None).await;
    // Returns few whatever is asked, and says so in its NIP-11 document.
    let capped = TestRelay::start(&events, Some(20)).await;
    let cases = [
        (&asked, None, 20),
        (&capped, Some(json!({"limitation": {"max_limit": 20}})), 500),
    ];
    for (relay, nip11, limit) in cases {
        let fixture = Fixture::new().await;
        let relay_id = fixture.readable(&relay.url, nip11).await;
        let mut config = sync_config("w1");
        config.limit = limit;
        config.second_limit = limit;
        config.nip77.enabled = false;
        let report = synchronizer(&config)
            .run_cycle(&fixture.brotr, &CancellationToken::new())
            .await
            .expect("a cycle");
        let relay = report.relay(relay_id).expect("synced");
        assert_eq!(relay.outcome, RelayOutcome::CaughtUp);
        assert!(relay.counts.pages >= 5, "{:?}", relay.counts);
        assert!(relay.counts.requests >= 1_000 / 20, "{:?}", relay.counts);
        assert_eq!(relay.counts.pending_added, 0);
        assert!(
            relay.counts.received * 10 <= 1_000 * 12,
            "at most 20 % fetched twice: {:?}",
            relay.counts
        );
        assert_eq!(fixture.relay_event_ids(relay_id).await, ids(&events));
        assert_eq!(fixture.event_count().await, 1_000);
    }
}

#[tokio::test]
async fn a_second_holding_more_than_a_relay_returns_is_pending_then_completed() {
    let keys = Keys::generate();
    let crowded_second = BASE + 5_000;
    let mut events = notes(&keys, 50, 0, 600);
    // Three times what the capped relay returns at once.
    events.extend((0..30).map(|i| note(&keys, 1, crowded_second, &format!("crowd {i}"))));
    // Honours any limit: the retry with `second_limit` gets the second
    // whole in the same cycle.
    let generous = TestRelay::start(&events, None).await;
    // Never returns more than 10.
    let capped = TestRelay::start(&events, Some(10)).await;
    let fixture = Fixture::new().await;
    let generous_id = fixture.readable(&generous.url, None).await;
    let capped_id = fixture.readable(&capped.url, None).await;
    let mut config = sync_config("w1");
    config.limit = 10;
    config.second_limit = 100;
    config.nip77.enabled = false;

    let report = synchronizer(&config)
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");

    let generous_report = report.relay(generous_id).expect("synced");
    assert_eq!(generous_report.outcome, RelayOutcome::CaughtUp);
    assert_eq!(generous_report.counts.pending_added, 1);
    assert_eq!(generous_report.counts.pending_resolved, 1);
    assert_eq!(fixture.relay_event_ids(generous_id).await, ids(&events));

    let capped_report = report.relay(capped_id).expect("synced");
    assert_eq!(capped_report.outcome, RelayOutcome::CaughtUp);
    assert_eq!(capped_report.counts.pending_added, 1);
    assert_eq!(capped_report.counts.pending_resolved, 0);
    let stored = fixture.relay_event_ids(capped_id).await;
    assert_eq!(
        stored.len(),
        50 + 10,
        "every other second whole, 10 of the crowded one"
    );
    assert!(ids(&events[..50]).is_subset(&stored));
    // The cursor went past the crowded second, which is pending.
    let (cursor, _) = fixture.cursor(capped_id).await;
    assert!(cursor.expect("a cursor").created_at > crowded_second);
    assert_eq!(capped_report.cursor, cursor);
    assert_ne!(cursor, Some(Cursor::end_of(crowded_second)));
    let pending = fixture.pending(capped_id).await;
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].since, pending[0].until),
        (crowded_second, crowded_second)
    );
    assert_eq!(pending[0].attempts, 1, "retried once in the same cycle");

    // Retried again without NIP-77: still pending, nothing lost.
    let mut config = config.clone();
    config.worker_id = "w2".to_owned();
    let again = synchronizer(&config)
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert_eq!(again.totals.pending_resolved, 0);
    assert_eq!(fixture.pending(capped_id).await[0].attempts, 2);

    // With NIP-77 the relay lists the second's events and serves them by id.
    config.nip77.enabled = true;
    let reconciled = synchronizer(&config)
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    let relay = reconciled.relay(capped_id).expect("synced");
    assert_eq!(relay.outcome, RelayOutcome::CaughtUp);
    assert_eq!(relay.counts.pending_resolved, 1, "{:?}", relay.counts);
    // The generous relay had served them: their provenance is recorded
    // without downloading them again.
    assert_eq!(relay.counts.sightings, 20, "{:?}", relay.counts);
    assert_eq!(relay.counts.received, 0);
    assert_eq!(fixture.relay_event_ids(capped_id).await, ids(&events));
    assert!(fixture.pending(capped_id).await.is_empty());
}

#[tokio::test]
async fn a_lilbrotr_archive_is_synced_the_same_way() {
    let keys = Keys::generate();
    let events = notes(&keys, 300, 0, 60);
    let relay = TestRelay::start(&events, None).await;
    let fixture = Fixture::of("lilbrotr", bigbrotr_config::BrotrConfig::default()).await;
    let relay_id = fixture.readable(&relay.url, None).await;
    let report = synchronizer(&sync_config("w1"))
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert_eq!(report.totals.stored, 300);
    assert_eq!(fixture.relay_event_ids(relay_id).await, ids(&events));
    let (cursor, lease) = fixture.cursor(relay_id).await;
    assert_eq!(cursor, report.relay(relay_id).expect("synced").cursor);
    assert_eq!(lease, None);
}
