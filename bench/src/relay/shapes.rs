//! The filter shapes asked of both relays, and the filters of each: one
//! filter a `REQ`, its values picked at random from the events, the same
//! sequence for both relays.

use nostr::{Filter, JsonUtil, Kind, Timestamp};

use super::events::Sample;

/// Ids asked for at once by [`Shape::Ids`].
const IDS_PER_REQUEST: usize = 20;
/// Seed of the values' random sequence.
const SEED: u64 = 7447;

/// A kind of filter, as clients send them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// An author's latest events: `{"authors":[a],"limit":50}`; the author
    /// of a random event, so the active ones are asked for more often.
    Author,
    /// The latest notes: `{"kinds":[1],"limit":50}`.
    Kind,
    /// What refers to a note (replies, reactions, reposts):
    /// `{"#e":[id],"limit":500}`, the id of a random `e` tag.
    ETag,
    /// What mentions an author: `{"#p":[pk],"limit":500}`, one of the
    /// authors some `p` tag names.
    PTag,
    /// A day of events: `{"since":t,"until":t+86400,"limit":100}`.
    TimeRange,
    /// An author's latest notes: `{"authors":[a],"kinds":[1],"limit":50}`,
    /// the author of a random note.
    AuthorKind,
    /// Events by id: `{"ids":[20 ids]}`, of random events.
    Ids,
}

impl Shape {
    /// Every shape, in the order they run.
    pub(super) const ALL: [Self; 7] = [
        Self::Author,
        Self::Kind,
        Self::ETag,
        Self::PTag,
        Self::TimeRange,
        Self::AuthorKind,
        Self::Ids,
    ];

    /// Its name in the table.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Author => "author, limit 50",
            Self::Kind => "kind 1, limit 50",
            Self::ETag => "#e, limit 500",
            Self::PTag => "#p, limit 500",
            Self::TimeRange => "one day, limit 100",
            Self::AuthorKind => "author + kind 1, limit 50",
            Self::Ids => "20 ids",
        }
    }

    /// `count` filters of this shape, as JSON objects, from `sample`: the
    /// same ones on every call.
    pub(super) fn filters(self, sample: &Sample, count: usize) -> Vec<String> {
        let mut rng = fastrand::Rng::with_seed(SEED ^ self as u64);
        let events = sample.len();
        let notes: Vec<usize> = if self == Self::AuthorKind {
            (0..events).filter(|&i| sample.kinds[i] == 1).collect()
        } else {
            Vec::new()
        };
        let (first, last) = sample
            .created_at
            .iter()
            .fold((u64::MAX, 0), |(lo, hi), &t| (lo.min(t), hi.max(t)));
        (0..count)
            .map(|_| {
                let filter = match self {
                    Self::Author => {
                        let event = rng.usize(..events);
                        Filter::new()
                            .author(sample.authors[sample.author_of[event] as usize])
                            .limit(50)
                    }
                    Self::Kind => Filter::new().kind(Kind::TextNote).limit(50),
                    Self::ETag => Filter::new()
                        .event(sample.referenced[rng.usize(..sample.referenced.len())])
                        .limit(500),
                    Self::PTag => Filter::new()
                        .pubkey(sample.tagged[rng.usize(..sample.tagged.len())])
                        .limit(500),
                    Self::TimeRange => {
                        let since = rng.u64(first..=last.saturating_sub(86_400).max(first));
                        Filter::new()
                            .since(Timestamp::from_secs(since))
                            .until(Timestamp::from_secs(since + 86_400))
                            .limit(100)
                    }
                    Self::AuthorKind => {
                        let note = notes[rng.usize(..notes.len())];
                        Filter::new()
                            .author(sample.authors[sample.author_of[note] as usize])
                            .kind(Kind::TextNote)
                            .limit(50)
                    }
                    Self::Ids => Filter::new()
                        .ids((0..IDS_PER_REQUEST).map(|_| sample.ids[rng.usize(..events)])),
                };
                filter.as_json()
            })
            .collect()
    }

    /// Whether `sample` has what this shape's values are picked from.
    pub(super) fn possible(self, sample: &Sample) -> bool {
        match self {
            Self::ETag => !sample.referenced.is_empty(),
            Self::PTag => !sample.tagged.is_empty(),
            Self::AuthorKind => sample.kinds.contains(&1),
            Self::Author | Self::Kind | Self::TimeRange | Self::Ids => sample.len() > 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use nostr::{EventId, Keys};

    use super::*;

    fn sample() -> Sample {
        let authors: Vec<_> = (0..3).map(|_| Keys::generate().public_key()).collect();
        Sample {
            ids: (0..10u8)
                .map(|i| EventId::from_byte_array([i; 32]))
                .collect(),
            author_of: (0..10).map(|i| i % 3).collect(),
            created_at: (0..10).map(|i| 1_700_000_000 + i * 86_400).collect(),
            kinds: vec![1, 7, 1, 6, 1, 1, 7, 1, 0, 3],
            referenced: vec![EventId::from_byte_array([1; 32])],
            tagged: vec![authors[1]],
            authors,
        }
    }

    #[test]
    fn each_shape_gives_the_same_filters_every_time_and_of_its_form() {
        let sample = sample();
        for shape in Shape::ALL {
            assert!(shape.possible(&sample));
            let filters = shape.filters(&sample, 30);
            assert_eq!(filters, shape.filters(&sample, 30), "{shape:?}");
            for json in &filters {
                let filter = Filter::from_json(json).expect("a filter");
                match shape {
                    Shape::Author => assert_eq!(filter.authors.map(|a| a.len()), Some(1)),
                    Shape::Kind => assert_eq!(filter.limit, Some(50)),
                    Shape::ETag | Shape::PTag => assert_eq!(filter.generic_tags.len(), 1),
                    Shape::TimeRange => assert_eq!(
                        filter.until.expect("until").as_secs()
                            - filter.since.expect("since").as_secs(),
                        86_400
                    ),
                    Shape::AuthorKind => assert!(filter.kinds.is_some()),
                    // Drawn from ten, the twenty ids repeat some.
                    Shape::Ids => {
                        assert!(filter.ids.is_some_and(|ids| (1..=20).contains(&ids.len())))
                    }
                }
            }
        }
    }
}
