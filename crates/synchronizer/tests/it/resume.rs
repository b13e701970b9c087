//! Stopping mid-run, gracefully or not, and starting again: exactly the
//! rest is archived, and a cursor never passes an event that is not
//! committed.

use std::collections::HashSet;
use std::time::Duration;

use bigbrotr_brotr::RelayId;
use bigbrotr_synchronizer::{Cursor, RelayOutcome, SynchronizerConfig};
use nostr::{Event, EventId, Keys};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::support::{ids, notes, sync_config, synchronizer, Fixture, TestRelay};

const EVENTS: usize = 5_000;

/// Small windows and batches, so that a cycle takes long enough to be
/// stopped in the middle.
fn slow_config() -> SynchronizerConfig {
    let mut config = sync_config("w1");
    config.limit = 25;
    config.second_limit = 25;
    config.batch_size = 50;
    config
}

/// Waits until at least `at_least` events of `relay` are archived.
async fn wait_for_progress(fixture: &Fixture, relay: RelayId, at_least: i64) {
    let started = Instant::now();
    while fixture.relay_event_count(relay).await < at_least {
        assert!(started.elapsed() < Duration::from_secs(20), "no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The events of `events` that `cursor` covers.
fn covered(events: &[Event], cursor: Option<Cursor>) -> HashSet<EventId> {
    let Some(cursor) = cursor else {
        return HashSet::new();
    };
    events
        .iter()
        .filter(|event| {
            let created_at = i64::try_from(event.created_at.as_secs()).expect("in range");
            cursor.covers(created_at, &event.id)
        })
        .map(|event| event.id)
        .collect()
}

#[tokio::test]
async fn a_cancelled_cycle_commits_what_it_completed_and_the_next_archives_exactly_the_rest() {
    let keys = Keys::generate();
    let events = notes(&keys, EVENTS, 0, 11);
    let relay = TestRelay::start(&events, None).await;
    let fixture = Fixture::new().await;
    let relay_id = fixture.readable(&relay.url, None).await;
    let sync = synchronizer(&slow_config());

    let cancel = CancellationToken::new();
    let cycle = {
        let (sync, brotr, cancel) = (sync.clone(), fixture.brotr.clone(), cancel.clone());
        tokio::spawn(async move { sync.run_cycle(&brotr, &cancel).await })
    };
    wait_for_progress(&fixture, relay_id, 500).await;
    cancel.cancel();
    let first = cycle.await.expect("joined").expect("a cycle");
    assert!(first.cancelled);
    let relay_report = first.relay(relay_id).expect("synced");
    assert_eq!(relay_report.outcome, RelayOutcome::Cancelled);
    let stored_first = first.totals.stored;
    assert!(
        stored_first > 0 && stored_first < EVENTS as u64,
        "{stored_first}"
    );

    // The cursor covers only what was committed; events of the window in
    // progress are committed too, ahead of it.
    let (cursor, lease) = fixture.cursor(relay_id).await;
    assert_eq!(lease, None, "released on cancellation");
    assert_eq!(cursor, relay_report.cursor);
    let archived = fixture.relay_event_ids(relay_id).await;
    assert_eq!(archived.len() as u64, stored_first);
    assert!(covered(&events, cursor).is_subset(&archived));

    let second = sync
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert!(!second.cancelled);
    assert_eq!(second.totals.stored, EVENTS as u64 - stored_first);
    // Reconciliation leaves out what is archived from the relay already.
    assert_eq!(second.totals.duplicates, 0, "no work done twice");
    assert_eq!(fixture.relay_event_ids(relay_id).await, ids(&events));
    assert_eq!(fixture.event_count().await, EVENTS as i64);
}

#[tokio::test]
async fn a_worker_stopped_dead_loses_nothing_and_fetches_nothing_twice() {
    let keys = Keys::generate();
    let events = notes(&keys, EVENTS, 0, 11);
    let relay = TestRelay::start(&events, None).await;
    let fixture = Fixture::new().await;
    let relay_id = fixture.readable(&relay.url, None).await;
    let config = slow_config();
    let sync = synchronizer(&config);

    let cycle = {
        let (sync, brotr) = (sync.clone(), fixture.brotr.clone());
        tokio::spawn(async move { sync.run_cycle(&brotr, &CancellationToken::new()).await })
    };
    wait_for_progress(&fixture, relay_id, 500).await;
    // No cleanup at all, as when the process dies.
    cycle.abort();
    let _ = cycle.await;
    // A statement already sent may still commit.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (cursor, lease) = fixture.cursor(relay_id).await;
    assert_eq!(lease.as_deref(), Some("w1"), "still leased");
    let archived = fixture.relay_event_ids(relay_id).await;
    let committed = covered(&events, cursor);
    assert!(
        committed.is_subset(&archived),
        "the cursor passed uncommitted events"
    );

    // The same worker, restarted, takes its relay back at once.
    let second = sync
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert_eq!(second.relays.len(), 1);
    assert_eq!(
        second.totals.duplicates, 0,
        "reconciled: nothing fetched twice"
    );
    assert_eq!(
        second.totals.stored,
        (EVENTS - archived.len()) as u64,
        "{:?}",
        second.totals
    );
    assert_eq!(fixture.relay_event_ids(relay_id).await, ids(&events));
    assert_eq!(fixture.event_count().await, EVENTS as i64);
}
