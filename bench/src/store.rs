//! The event store of the soak benchmark's relays: events sorted newest
//! first, a time window answered by binary search, an `ids` filter by a
//! hash map, and a NIP-77 reconciliation built from a window. Besides its
//! events, a store may hold raw entries: JSON served as it is, shared by
//! every relay holding it (events far too large to hold once per relay).
//!
//! A general relay database answers a filter without authors by walking
//! every event it holds from the newest, so each `REQ` of a window in the
//! past costs time in proportion to the events held: at 300 000 events a
//! relay, such relays spent more CPU time than the synchronizer they feed.
//! Here a window costs its own events and a binary search, and the events
//! are shared (`Arc`) by the relays holding them.

use std::collections::HashMap;
use std::sync::Arc;

use negentropy::{Id, Negentropy, NegentropyStorageVector};
use nostr::filter::MatchEventOptions;
use nostr::{Event, EventId, Filter, Timestamp};

/// Events returned to a `REQ` without a `limit`, as common relays do.
const DEFAULT_LIMIT: usize = 500;
/// The largest NIP-77 message the relay sends, in bytes before hex: the
/// frame size common relays use.
const NEGENTROPY_FRAME_LIMIT: u64 = 60_000;

/// An event held as the JSON a relay serves, shared by every store holding
/// it; only its id and `created_at` are known to the store.
#[derive(Debug)]
pub(crate) struct RawEvent {
    pub(crate) id: EventId,
    pub(crate) created_at: Timestamp,
    pub(crate) json: Arc<str>,
}

/// One answer of a store: a signed event, or a raw entry.
#[derive(Debug, Clone)]
pub(crate) enum Entry {
    Event(Arc<Event>),
    Raw(Arc<RawEvent>),
}

impl Entry {
    fn created_at(&self) -> Timestamp {
        match self {
            Self::Event(event) => event.created_at,
            Self::Raw(raw) => raw.created_at,
        }
    }
}

/// Events held newest first (the order of [`Event`]'s `Ord`: `created_at`
/// descending, then id), with an index by id; and raw entries, newest
/// first, which match a filter by its `ids`, `since` and `until` only.
#[derive(Debug, Default)]
pub(crate) struct WindowStore {
    events: Vec<Arc<Event>>,
    by_id: HashMap<EventId, usize>,
    raw: Vec<Arc<RawEvent>>,
}

impl WindowStore {
    /// A store holding `events`, in any order.
    pub(crate) fn new(mut events: Vec<Arc<Event>>) -> Self {
        events.sort_unstable_by(|a, b| a.as_ref().cmp(b.as_ref()));
        events.dedup_by(|a, b| a.id == b.id);
        let by_id = events
            .iter()
            .enumerate()
            .map(|(index, event)| (event.id, index))
            .collect();
        Self {
            events,
            by_id,
            raw: Vec::new(),
        }
    }

    /// The store holding `raw` besides its events.
    pub(crate) fn with_raw(mut self, raw: &[Arc<RawEvent>]) -> Self {
        self.raw.extend(raw.iter().cloned());
        self.raw
            .sort_unstable_by(|a, b| (b.created_at, a.id).cmp(&(a.created_at, b.id)));
        self.raw.dedup_by(|a, b| a.id == b.id);
        self
    }

    /// Events held.
    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }

    /// The events between the filter's `since` and `until`, newest first.
    fn window(&self, filter: &Filter) -> &[Arc<Event>] {
        let start = filter.until.map_or(0, |until| {
            self.events.partition_point(|e| e.created_at > until)
        });
        let end = filter.since.map_or(self.events.len(), |since| {
            self.events.partition_point(|e| e.created_at >= since)
        });
        self.events.get(start..end).unwrap_or_default()
    }

    /// The raw entries between the filter's `since` and `until`, newest
    /// first.
    fn raw_window(&self, filter: &Filter) -> &[Arc<RawEvent>] {
        let start = filter.until.map_or(0, |until| {
            self.raw.partition_point(|e| e.created_at > until)
        });
        let end = filter.since.map_or(self.raw.len(), |since| {
            self.raw.partition_point(|e| e.created_at >= since)
        });
        self.raw.get(start..end).unwrap_or_default()
    }

    /// The entries matching `filter`, at most its `limit` (or the default
    /// one) and `cap`: by id when it names ids, else newest first.
    pub(crate) fn query(&self, filter: &Filter, cap: usize) -> Vec<Entry> {
        let limit = filter.limit.unwrap_or(DEFAULT_LIMIT).min(cap);
        let matches = |event: &&Arc<Event>| filter.match_event(event, MatchEventOptions::new());
        match &filter.ids {
            Some(ids) => ids
                .iter()
                .filter_map(|id| match self.by_id.get(id) {
                    Some(&index) => Some(&self.events[index])
                        .filter(matches)
                        .map(|event| Entry::Event(Arc::clone(event))),
                    None => self
                        .raw_window(filter)
                        .iter()
                        .find(|raw| raw.id == *id)
                        .map(|raw| Entry::Raw(Arc::clone(raw))),
                })
                .take(limit)
                .collect(),
            None => {
                let mut events = self
                    .window(filter)
                    .iter()
                    .filter(matches)
                    .map(|event| Entry::Event(Arc::clone(event)))
                    .peekable();
                let mut raw = self
                    .raw_window(filter)
                    .iter()
                    .map(|raw| Entry::Raw(Arc::clone(raw)))
                    .peekable();
                // Both newest first: merged.
                let mut merged = Vec::new();
                while merged.len() < limit {
                    let raw_first = match (events.peek(), raw.peek()) {
                        (Some(event), Some(raw)) => raw.created_at() > event.created_at(),
                        (None, Some(_)) => true,
                        (_, None) => false,
                    };
                    match if raw_first { raw.next() } else { events.next() } {
                        Some(entry) => merged.push(entry),
                        None => break,
                    }
                }
                merged
            }
        }
    }

    /// The relay's side of a NIP-77 reconciliation of the events matching
    /// `filter` (whatever its `limit`: a reconciliation covers them all).
    pub(crate) fn negentropy(
        &self,
        filter: &Filter,
    ) -> Result<Negentropy<'static, NegentropyStorageVector>, negentropy::Error> {
        let window = self.window(filter);
        let raw = self.raw_window(filter);
        let mut storage = NegentropyStorageVector::with_capacity(window.len() + raw.len());
        for event in window {
            if filter.match_event(event, MatchEventOptions::new()) {
                storage.insert(
                    event.created_at.as_secs(),
                    Id::from_byte_array(event.id.to_bytes()),
                )?;
            }
        }
        for raw in raw {
            storage.insert(
                raw.created_at.as_secs(),
                Id::from_byte_array(raw.id.to_bytes()),
            )?;
        }
        storage.seal()?;
        Negentropy::owned(storage, NEGENTROPY_FRAME_LIMIT)
    }
}

#[cfg(test)]
mod tests {
    use nostr::{EventBuilder, JsonUtil, Keys, Kind};

    use super::*;

    fn note(keys: &Keys, created_at: u64) -> Arc<Event> {
        Arc::new(
            EventBuilder::new(Kind::TextNote, format!("at {created_at}"))
                .custom_created_at(Timestamp::from_secs(created_at))
                .sign_with_keys(keys)
                .unwrap_or_else(|error| panic!("signed: {error}")),
        )
    }

    fn created(entries: &[Entry]) -> Vec<u64> {
        entries
            .iter()
            .map(|entry| entry.created_at().as_secs())
            .collect()
    }

    fn raw(keys: &Keys, created_at: u64) -> Arc<RawEvent> {
        let event = note(keys, created_at);
        Arc::new(RawEvent {
            id: event.id,
            created_at: event.created_at,
            json: event.as_json().into(),
        })
    }

    fn window(since: u64, until: u64) -> Filter {
        Filter::new()
            .since(Timestamp::from_secs(since))
            .until(Timestamp::from_secs(until))
    }

    #[test]
    fn a_window_returns_its_events_newest_first_up_to_the_limit_and_the_cap() {
        let keys = Keys::generate();
        let store = WindowStore::new((1..=10).rev().map(|at| note(&keys, at * 10)).collect());
        assert_eq!(store.len(), 10);
        assert_eq!(
            created(&store.query(&window(30, 70), usize::MAX)),
            [70, 60, 50, 40, 30]
        );
        assert_eq!(
            created(&store.query(&window(25, 75).limit(3), usize::MAX)),
            [70, 60, 50]
        );
        assert_eq!(created(&store.query(&window(25, 75).limit(3), 2)), [70, 60]);
        assert!(store.query(&window(31, 39), usize::MAX).is_empty());
        assert_eq!(store.query(&Filter::new(), usize::MAX).len(), 10);
    }

    #[test]
    fn ids_are_found_by_id_and_unknown_ones_left_out() {
        let keys = Keys::generate();
        let events: Vec<Arc<Event>> = (1..=5).map(|at| note(&keys, at)).collect();
        let store = WindowStore::new(events.clone());
        let unknown = note(&keys, 9);
        let found = store.query(
            &Filter::new().ids([events[1].id, unknown.id, events[3].id]),
            usize::MAX,
        );
        let mut found = created(&found);
        found.sort_unstable();
        assert_eq!(found, [2, 4]);
    }

    #[test]
    fn raw_entries_are_merged_into_windows_and_found_by_id() {
        let keys = Keys::generate();
        let giants = [raw(&keys, 55), raw(&keys, 5)];
        let store =
            WindowStore::new((1..=10).map(|at| note(&keys, at * 10)).collect()).with_raw(&giants);
        assert_eq!(store.len(), 10);
        assert_eq!(
            created(&store.query(&window(30, 70), usize::MAX)),
            [70, 60, 55, 50, 40, 30]
        );
        assert_eq!(
            created(&store.query(&window(0, 60).limit(3), usize::MAX)),
            [60, 55, 50]
        );
        assert_eq!(created(&store.query(&window(0, 12), usize::MAX)), [10, 5]);
        let found = store.query(&Filter::new().ids([giants[0].id]), usize::MAX);
        assert!(matches!(found.as_slice(), [Entry::Raw(raw)] if raw.id == giants[0].id));
        let mut relay = store
            .negentropy(&window(50, 60))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut empty = NegentropyStorageVector::new();
        empty.seal().unwrap_or_else(|e| panic!("{e}"));
        let mut client =
            Negentropy::owned(empty, NEGENTROPY_FRAME_LIMIT).unwrap_or_else(|e| panic!("{e}"));
        let message = client.initiate().unwrap_or_else(|e| panic!("{e}"));
        let answer = relay.reconcile(&message).unwrap_or_else(|e| panic!("{e}"));
        let (mut have, mut need) = (Vec::new(), Vec::new());
        let _ = client
            .reconcile_with_ids(&answer, &mut have, &mut need)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(need.len(), 3);
    }

    #[test]
    fn a_reconciliation_lists_what_the_client_lacks() {
        let keys = Keys::generate();
        let events: Vec<Arc<Event>> = (1..=20).map(|at| note(&keys, at)).collect();
        let store = WindowStore::new(events.clone());
        let mut relay = store
            .negentropy(&window(5, 14))
            .unwrap_or_else(|e| panic!("{e}"));
        // The client holds the window's events but 7 and 9.
        let mut held = NegentropyStorageVector::new();
        for event in events.iter().filter(|event| {
            let at = event.created_at.as_secs();
            (5..=14).contains(&at) && at != 7 && at != 9
        }) {
            held.insert(
                event.created_at.as_secs(),
                Id::from_byte_array(event.id.to_bytes()),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
        held.seal().unwrap_or_else(|e| panic!("{e}"));
        let mut client =
            Negentropy::owned(held, NEGENTROPY_FRAME_LIMIT).unwrap_or_else(|e| panic!("{e}"));
        let mut message = client.initiate().unwrap_or_else(|e| panic!("{e}"));
        let (mut have, mut need) = (Vec::new(), Vec::new());
        loop {
            let answer = relay.reconcile(&message).unwrap_or_else(|e| panic!("{e}"));
            match client
                .reconcile_with_ids(&answer, &mut have, &mut need)
                .unwrap_or_else(|e| panic!("{e}"))
            {
                Some(next) => message = next,
                None => break,
            }
        }
        let mut need: Vec<EventId> = need
            .into_iter()
            .map(|id| EventId::from_byte_array(id.to_bytes()))
            .collect();
        need.sort();
        let mut expected = vec![events[6].id, events[8].id];
        expected.sort();
        assert_eq!(need, expected);
        assert!(have.is_empty());
    }
}
