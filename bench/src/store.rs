//! The event store of the soak benchmark's relays: a `nostr-relay-builder`
//! database holding events sorted newest first and answering a time window
//! by binary search.
//!
//! The relay builder's own `MemoryDatabase` answers a filter without
//! authors by walking every event it holds from the newest, so each `REQ`
//! of a window in the past costs time in proportion to the events held: at
//! 300 000 events a relay, the relays of the soak run spent more CPU time
//! than the synchronizer they feed. Here a window costs its own events and
//! a binary search, and the events are shared (`Arc`) by the relays holding
//! them.

use std::sync::{Arc, PoisonError, RwLock};

use nostr::filter::MatchEventOptions;
use nostr::util::BoxedFuture;
use nostr::{Event, EventId, Filter};
use nostr_relay_builder::prelude::{
    Backend, DatabaseError, DatabaseEventStatus, Events, NostrDatabase, SaveEventStatus,
};

/// Events held newest first (the order of [`Event`]'s `Ord`: `created_at`
/// descending, then id).
#[derive(Debug, Default)]
pub(crate) struct WindowStore {
    events: RwLock<Vec<Arc<Event>>>,
}

impl WindowStore {
    /// A store holding `events`, in any order.
    pub(crate) fn new(mut events: Vec<Arc<Event>>) -> Self {
        events.sort_unstable_by(|a, b| a.as_ref().cmp(b.as_ref()));
        events.dedup_by(|a, b| a.id == b.id);
        Self {
            events: RwLock::new(events),
        }
    }

    /// Events held.
    pub(crate) fn len(&self) -> usize {
        self.read().len()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Event>>> {
        self.events.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Arc<Event>>> {
        self.events.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls `each` on the events matching `filter`, newest first, until
    /// it returns `false`.
    fn matching(&self, filter: &Filter, mut each: impl FnMut(&Arc<Event>) -> bool) {
        let events = self.read();
        // Newest first: the window is the run between the first event not
        // newer than `until` and the first one older than `since`.
        let start = filter
            .until
            .map_or(0, |until| events.partition_point(|e| e.created_at > until));
        let end = filter.since.map_or(events.len(), |since| {
            events.partition_point(|e| e.created_at >= since)
        });
        for event in events.get(start..end).unwrap_or_default() {
            if filter.match_event(event, MatchEventOptions::new()) && !each(event) {
                return;
            }
        }
    }
}

impl NostrDatabase for WindowStore {
    fn backend(&self) -> Backend {
        Backend::Custom("bench window store".to_owned())
    }

    fn save_event<'a>(
        &'a self,
        event: &'a Event,
    ) -> BoxedFuture<'a, Result<SaveEventStatus, DatabaseError>> {
        Box::pin(async move {
            let mut events = self.write();
            // Events of the same second are ordered by id: an equal one is
            // found at its place.
            match events.binary_search_by(|held| held.as_ref().cmp(event)) {
                Ok(_) => {}
                Err(place) => events.insert(place, Arc::new(event.clone())),
            }
            Ok(SaveEventStatus::Success)
        })
    }

    fn check_id<'a>(
        &'a self,
        event_id: &'a EventId,
    ) -> BoxedFuture<'a, Result<DatabaseEventStatus, DatabaseError>> {
        Box::pin(async move {
            let held = self.read().iter().any(|event| event.id == *event_id);
            Ok(if held {
                DatabaseEventStatus::Saved
            } else {
                DatabaseEventStatus::NotExistent
            })
        })
    }

    fn event_by_id<'a>(
        &'a self,
        event_id: &'a EventId,
    ) -> BoxedFuture<'a, Result<Option<Event>, DatabaseError>> {
        Box::pin(async move {
            Ok(self
                .read()
                .iter()
                .find(|event| event.id == *event_id)
                .map(|event| event.as_ref().clone()))
        })
    }

    fn count(&self, filter: Filter) -> BoxedFuture<'_, Result<usize, DatabaseError>> {
        Box::pin(async move {
            let mut count = 0;
            self.matching(&filter, |_| {
                count += 1;
                true
            });
            Ok(count)
        })
    }

    fn query(&self, filter: Filter) -> BoxedFuture<'_, Result<Events, DatabaseError>> {
        Box::pin(async move {
            let mut found = Events::new(&filter);
            let limit = filter.limit.unwrap_or(usize::MAX);
            let mut taken = 0;
            self.matching(&filter, |event| {
                found.insert(event.as_ref().clone());
                taken += 1;
                taken < limit
            });
            Ok(found)
        })
    }

    fn delete(&self, filter: Filter) -> BoxedFuture<'_, Result<(), DatabaseError>> {
        Box::pin(async move {
            self.write()
                .retain(|event| !filter.match_event(event, MatchEventOptions::new()));
            Ok(())
        })
    }

    fn wipe(&self) -> BoxedFuture<'_, Result<(), DatabaseError>> {
        Box::pin(async move {
            self.write().clear();
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use nostr::{EventBuilder, Keys, Kind, Timestamp};

    use super::*;

    fn note(keys: &Keys, created_at: u64) -> Arc<Event> {
        Arc::new(
            EventBuilder::new(Kind::TextNote, format!("at {created_at}"))
                .custom_created_at(Timestamp::from_secs(created_at))
                .sign_with_keys(keys)
                .unwrap_or_else(|error| panic!("signed: {error}")),
        )
    }

    fn created(events: &Events) -> Vec<u64> {
        events
            .iter()
            .map(|event| event.created_at.as_secs())
            .collect()
    }

    #[tokio::test]
    async fn a_window_returns_its_events_newest_first_up_to_the_limit() {
        let keys = Keys::generate();
        let store = WindowStore::new((1..=10).rev().map(|at| note(&keys, at * 10)).collect());
        assert_eq!(store.len(), 10);
        let window = |since: u64, until: u64| {
            Filter::new()
                .since(Timestamp::from_secs(since))
                .until(Timestamp::from_secs(until))
        };
        let all = store
            .query(window(30, 70))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(created(&all), [70, 60, 50, 40, 30]);
        let some = store
            .query(window(25, 75).limit(2))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(created(&some), [70, 60]);
        let none = store
            .query(window(31, 39))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(none.is_empty());
        let count = store
            .count(Filter::new())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(count, 10);
    }

    #[tokio::test]
    async fn a_saved_event_is_found_once() {
        let keys = Keys::generate();
        let store = WindowStore::new(vec![note(&keys, 10), note(&keys, 30)]);
        let event = note(&keys, 20);
        for _ in 0..2 {
            store
                .save_event(&event)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let all = store
            .query(Filter::new())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(created(&all), [30, 20, 10]);
        assert_eq!(
            store
                .check_id(&event.id)
                .await
                .unwrap_or_else(|e| panic!("{e}")),
            DatabaseEventStatus::Saved
        );
    }
}
