//! [`SyncFilter`]: the configured filter, the window filters sent to relays,
//! and the check of every event against the request that asked for it;
//! [`Cursor`], a relay's position in `(created_at, id)` order.

use nostr::filter::MatchEventOptions;
use nostr::{Event, EventId, Filter, Kind, PublicKey, SingleLetterTag, Timestamp};

use crate::config::FilterConfig;
use crate::error::{Error, Result};

/// The configured filter of the synchronizer, and its hash, which keys the
/// cursors walked with it.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncFilter {
    base: Filter,
    hash: [u8; 32],
}

impl SyncFilter {
    /// The filter `config` describes. Refuses what validation refuses.
    pub fn new(config: &FilterConfig) -> Result<Self> {
        let mut base = Filter::new();
        if !config.kinds.is_empty() {
            base = base.kinds(config.kinds.iter().copied().map(Kind::from));
        }
        if !config.authors.is_empty() {
            let mut authors = Vec::with_capacity(config.authors.len());
            for (index, author) in config.authors.iter().enumerate() {
                let key = PublicKey::parse(author).map_err(|_| Error::InvalidConfig {
                    problems: vec![bigbrotr_config::Problem::new(
                        format!("synchronizer.filter.authors[{index}]"),
                        "is not a public key (hex or npub)",
                    )],
                })?;
                authors.push(key);
            }
            base = base.authors(authors);
        }
        for (letter, values) in &config.tags {
            let tag = letter
                .chars()
                .next()
                .filter(|_| letter.chars().count() == 1)
                .and_then(|c| SingleLetterTag::from_char(c).ok())
                .ok_or_else(|| Error::InvalidConfig {
                    problems: vec![bigbrotr_config::Problem::new(
                        format!("synchronizer.filter.tags.{letter}"),
                        "a tag name must be one ASCII letter",
                    )],
                })?;
            base = base.custom_tags(tag, values.iter().cloned());
        }
        // The JSON of a filter lists its sets in order, so equal filters hash
        // alike however the configuration spells them.
        let hash =
            bigbrotr_utils::compute_hash(&base).map_err(|source| Error::FilterHash { source })?;
        Ok(Self { base, hash })
    }

    /// The filter without time bounds or limit.
    #[must_use]
    pub fn base(&self) -> &Filter {
        &self.base
    }

    /// The SHA-256 of the filter's canonical JSON: the key under which
    /// cursors walked with it are stored.
    #[must_use]
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }

    /// The filter of one window: events created from `since` to `until`
    /// (Unix seconds, both included), at most `limit` of them.
    #[must_use]
    pub fn window(&self, since: i64, until: i64, limit: usize) -> Filter {
        self.base
            .clone()
            .since(timestamp(since))
            .until(timestamp(until))
            .limit(limit)
    }

    /// Whether `event` answers the request for the window `since..=until`.
    pub fn check(&self, event: &Event, since: i64, until: i64) -> Result<(), Mismatch> {
        let created_at = created_at(event);
        if created_at < since || created_at > until {
            return Err(Mismatch::OutsideWindow);
        }
        let options = MatchEventOptions::new()
            .since(false)
            .until(false)
            .nip50(false);
        if self.base.match_event(event, options) {
            Ok(())
        } else {
            Err(Mismatch::Filter)
        }
    }
}

/// Why an event does not answer the request that asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// It was created outside the window asked for.
    OutsideWindow,
    /// Its kind, author or tags are not what the filter asked for.
    Filter,
}

/// A relay's position in `(created_at, id)` order: every event of the relay
/// matching the filter up to here is archived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The second reached (Unix seconds).
    pub created_at: i64,
    /// `None` when the whole second `created_at` is archived; otherwise the
    /// events of that second are archived up to this id, in byte order.
    pub event_id: Option<EventId>,
}

impl Cursor {
    /// The position after the whole second `created_at`.
    #[must_use]
    pub fn end_of(created_at: i64) -> Self {
        Self {
            created_at,
            event_id: None,
        }
    }

    /// The position of `event`: up to and including it.
    #[must_use]
    pub fn at(event: &Event) -> Self {
        Self {
            created_at: created_at(event),
            event_id: Some(event.id),
        }
    }

    /// The first second that may still hold events past this position.
    #[must_use]
    pub fn next_second(&self) -> i64 {
        match self.event_id {
            None => self.created_at.saturating_add(1),
            Some(_) => self.created_at,
        }
    }

    /// Whether the event created at `created_at` with id `id` lies at or
    /// before this position (and is therefore archived already).
    #[must_use]
    pub fn covers(&self, created_at: i64, id: &EventId) -> bool {
        match created_at.cmp(&self.created_at) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => self
                .event_id
                .is_none_or(|last| id.as_bytes() <= last.as_bytes()),
        }
    }
}

/// An event's `created_at` in Unix seconds, as the database stores it.
pub(crate) fn created_at(event: &Event) -> i64 {
    i64::try_from(event.created_at.as_secs()).unwrap_or(i64::MAX)
}

fn timestamp(secs: i64) -> Timestamp {
    Timestamp::from_secs(u64::try_from(secs).unwrap_or(0))
}

/// Sorts events in `(created_at, id)` order, the order cursors follow.
pub(crate) fn sort_events(events: &mut [Event]) {
    events.sort_unstable_by(|a, b| {
        created_at(a)
            .cmp(&created_at(b))
            .then_with(|| a.id.as_bytes().cmp(b.id.as_bytes()))
    });
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use nostr::nips::nip19::ToBech32;
    use nostr::{EventBuilder, Keys, Tag};

    use super::*;

    fn note(keys: &Keys, kind: u16, created_at: u64, tags: Vec<Tag>) -> Event {
        EventBuilder::new(Kind::from(kind), "x")
            .tags(tags)
            .custom_created_at(Timestamp::from_secs(created_at))
            .sign_with_keys(keys)
            .expect("signed")
    }

    #[test]
    fn events_are_checked_against_the_window_and_the_filter() {
        let alice = Keys::generate();
        let bob = Keys::generate();
        let mut tags = BTreeMap::new();
        tags.insert("t".to_owned(), vec!["nostr".to_owned()]);
        let filter = SyncFilter::new(&FilterConfig {
            kinds: vec![1],
            authors: vec![alice.public_key().to_hex()],
            tags,
        })
        .expect("valid");
        let tagged = vec![Tag::hashtag("nostr")];
        let good = note(&alice, 1, 100, tagged.clone());
        assert_eq!(filter.check(&good, 100, 100), Ok(()));
        assert_eq!(filter.check(&good, 101, 200), Err(Mismatch::OutsideWindow));
        assert_eq!(filter.check(&good, 0, 99), Err(Mismatch::OutsideWindow));
        for other in [
            note(&alice, 7, 100, tagged.clone()),
            note(&bob, 1, 100, tagged),
            note(&alice, 1, 100, vec![Tag::hashtag("other")]),
        ] {
            assert_eq!(filter.check(&other, 0, 200), Err(Mismatch::Filter));
        }
    }

    #[test]
    fn window_filters_carry_the_bounds_and_the_limit() {
        let filter = SyncFilter::new(&FilterConfig {
            kinds: vec![1],
            ..FilterConfig::default()
        })
        .expect("valid");
        let window = filter.window(10, 20, 5);
        assert_eq!(window.since, Some(Timestamp::from_secs(10)));
        assert_eq!(window.until, Some(Timestamp::from_secs(20)));
        assert_eq!(window.limit, Some(5));
        assert_eq!(window.kinds, filter.base().kinds);
    }

    #[test]
    fn equal_filters_written_differently_hash_alike() {
        let keys = Keys::generate();
        let a = SyncFilter::new(&FilterConfig {
            kinds: vec![7, 1],
            authors: vec![keys.public_key().to_hex()],
            ..FilterConfig::default()
        })
        .expect("valid");
        let b = SyncFilter::new(&FilterConfig {
            kinds: vec![1, 7, 1],
            authors: vec![keys.public_key().to_bech32().expect("npub")],
            ..FilterConfig::default()
        })
        .expect("valid");
        assert_eq!(a.hash(), b.hash());
        let everything = SyncFilter::new(&FilterConfig::default()).expect("valid");
        assert_ne!(a.hash(), everything.hash());
    }

    #[test]
    fn a_cursor_covers_what_lies_at_or_before_it() {
        let low = EventId::from_byte_array([1; 32]);
        let mid = EventId::from_byte_array([5; 32]);
        let high = EventId::from_byte_array([9; 32]);
        let within = Cursor {
            created_at: 50,
            event_id: Some(mid),
        };
        assert!(within.covers(49, &high));
        assert!(within.covers(50, &low));
        assert!(within.covers(50, &mid));
        assert!(!within.covers(50, &high));
        assert!(!within.covers(51, &low));
        assert_eq!(within.next_second(), 50);
        let whole = Cursor::end_of(50);
        assert!(whole.covers(50, &high));
        assert!(!whole.covers(51, &low));
        assert_eq!(whole.next_second(), 51);
    }
}
