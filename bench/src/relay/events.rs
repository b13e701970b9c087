//! The events both relays serve: signed once as JSON lines and reused by
//! later runs, shaped like a small slice of the network, and what the
//! benchmark keeps of them to pick the values of its filters.
//!
//! A few thousand authors, a few very active (the author of an event is
//! ⌊authors·u³⌋ for a uniform u) and a long tail. Each author has one
//! profile (kind 0), one contact list (3, following 10 to 150 authors,
//! the active ones more often) and one relay list (10002), at any time of
//! the year. The other events follow each other over the year: 65 % text
//! notes (1), 25 % reactions (7), 10 % reposts (6). One note in sixteen
//! that is not a reply is *popular*: the reactions, the reposts and the 35
//! % of notes that are replies each refer (`e`) to one of the latest 2 000
//! popular notes, the newer ones more often, and tag (`p`) its author; a
//! popular note is thus referred to about 35 times. Three notes in ten
//! carry one or two hashtags (`t`).
//!
//! Only one profile, contact list and relay list per author, so that a
//! relay keeping only the latest replaceable event (nostr-rs-relay) and
//! the archive, which keeps every version, hold the same events.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use nostr::{
    Alphabet, Event, EventBuilder, EventId, JsonUtil, Keys, Kind, PublicKey, Tag, TagKind,
    Timestamp,
};

use crate::corpus::{self, JsonLines};

/// The most authors, reached at 900 000 events; fewer events have one
/// author per 300.
const MAX_AUTHORS: usize = 3000;
/// Events signed between two writes; a reply refers only to notes of
/// earlier rounds (signed in parallel, a round cannot refer to itself).
const ROUND: usize = 5000;
/// Earliest `created_at`; the events spread over the year after it.
pub(super) const EPOCH: u64 = 1_700_000_000;
/// A year, in seconds.
const YEAR: u64 = 365 * 86_400;
/// One note in this many (of those not replies) is popular.
const POPULAR_EVERY: u64 = 16;
/// Replies, reactions and reposts refer to one of the latest this many
/// popular notes.
const RECENT_POPULAR: usize = 2000;
/// Mixed into each event's own random generator.
const SEED: u64 = 0x6269_6762_726f_7472;
const HASHTAGS: [&str; 24] = [
    "nostr",
    "bitcoin",
    "zaps",
    "grownostr",
    "art",
    "music",
    "dev",
    "news",
    "photography",
    "plebchain",
    "foodstr",
    "memes",
    "privacy",
    "linux",
    "rust",
    "coffee",
    "books",
    "travel",
    "science",
    "asknostr",
    "gm",
    "introductions",
    "health",
    "sports",
];
const RELAYS: [&str; 8] = [
    "wss://relay.damus.io",
    "wss://nos.lol",
    "wss://relay.nostr.band",
    "wss://relay.primal.net",
    "wss://nostr.wine",
    "wss://relay.snort.social",
    "wss://purplepag.es",
    "wss://nostr.mom",
];

/// The authors of `count` events.
fn authors(count: usize) -> usize {
    (count / 300).clamp(1, MAX_AUTHORS)
}

/// What event `index` of `count` is, before it is signed: a function of
/// the index alone, so that the rounds agree on which notes are popular.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// The profile, contact list or relay list of an author.
    Replaceable { kind: u16, author: usize },
    /// A note nobody refers to, or a popular one.
    Note { author: usize, popular: bool },
    /// A reply (kind 1), reaction (7) or repost (6) to a popular note.
    Response { kind: u16, author: usize },
}

impl Plan {
    fn of(index: usize, count: usize) -> (Self, fastrand::Rng) {
        let authors = authors(count);
        let mut rng = fastrand::Rng::with_seed(SEED ^ index as u64);
        if index < 3 * authors {
            let kind = [0, 3, 10_002][index / authors];
            let author = index % authors;
            return (Self::Replaceable { kind, author }, rng);
        }
        let author = ((authors as f64) * rng.f64().powi(3)) as usize;
        let plan = match rng.u8(..100) {
            0..65 if rng.u8(..100) < 35 => Self::Response { kind: 1, author },
            0..65 => Self::Note {
                author,
                popular: rng.u64(..POPULAR_EVERY) == 0,
            },
            65..90 => Self::Response { kind: 7, author },
            _ => Self::Response { kind: 6, author },
        };
        (plan, rng)
    }

    /// When event `index` of `count` was created: the replaceable events at
    /// any time of the year, the others in order over it.
    fn created_at(self, index: usize, count: usize, rng: &mut fastrand::Rng) -> u64 {
        let first = 3 * authors(count);
        match self {
            Self::Replaceable { .. } => EPOCH + rng.u64(..YEAR),
            Self::Note { .. } | Self::Response { .. } => {
                let span = (count - first).max(1) as u64;
                EPOCH + (index - first) as u64 * YEAR / span + rng.u64(..600)
            }
        }
    }
}

/// The file of `count` events in `dir`, signed now on `workers` threads
/// unless an earlier run left it. Returns whether it was generated.
pub(super) fn ensure(dir: &Path, count: usize, workers: usize) -> anyhow::Result<(PathBuf, bool)> {
    let path = dir.join(format!("relay-{count}.jsonl"));
    if path.is_file() {
        return Ok((path, false));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut writer = JsonLines::create(&path)?;
    let keys: Vec<Keys> = (0..authors(count)).map(|_| Keys::generate()).collect();
    // The popular notes of the rounds written so far: id and author.
    let mut popular: Vec<(EventId, PublicKey)> = Vec::new();
    let mut done = 0;
    while done < count {
        let round = ROUND.min(count - done);
        let recent = &popular[popular.len().saturating_sub(RECENT_POPULAR)..];
        let sign = |keys: &[Keys], index: usize, _: &mut fastrand::Rng| {
            sign_planned(keys, index, count, recent)
        };
        let lines = corpus::sign_round_with(&keys, done, round, workers, &sign)?;
        for (index, line) in (done..).zip(&lines) {
            writer.write(line)?;
            if let (Plan::Note { popular: true, .. }, _) = Plan::of(index, count) {
                let event = Event::from_json(line).context("reading a signed event")?;
                popular.push((event.id, event.pubkey));
            }
        }
        done += round;
    }
    writer.finish()?;
    Ok((path, true))
}

/// Signs event `index` of `count` as [`Plan::of`] says; `recent` are the
/// popular notes a response may refer to.
fn sign_planned(
    keys: &[Keys],
    index: usize,
    count: usize,
    recent: &[(EventId, PublicKey)],
) -> Result<Event, nostr::event::builder::Error> {
    let (mut plan, mut rng) = Plan::of(index, count);
    // Nothing to respond to yet: a plain note.
    if let (Plan::Response { author, .. }, true) = (plan, recent.is_empty()) {
        plan = Plan::Note {
            author,
            popular: false,
        };
    }
    let created_at = plan.created_at(index, count, &mut rng);
    let mut tags = Vec::new();
    let (kind, author, content) = match plan {
        Plan::Replaceable { kind, author } => {
            let content = match kind {
                0 => format!(
                    r#"{{"name":"author{author}","about":"{}","picture":"https://example.com/{author}.png"}}"#,
                    text(&mut rng, 20, 120)
                ),
                3 => {
                    let follows = rng.usize(10..=150);
                    let mut followed = HashSet::with_capacity(follows);
                    for _ in 0..follows {
                        followed.insert(((keys.len() as f64) * rng.f64().powi(3)) as usize);
                    }
                    let mut followed: Vec<usize> = followed.into_iter().collect();
                    followed.sort_unstable();
                    tags.extend(
                        followed
                            .into_iter()
                            .map(|other| Tag::public_key(keys[other].public_key())),
                    );
                    String::new()
                }
                _ => {
                    let first = rng.usize(..RELAYS.len());
                    for offset in 0..rng.usize(2..=5) {
                        let url = RELAYS[(first + offset) % RELAYS.len()];
                        tags.push(Tag::custom(
                            TagKind::single_letter(Alphabet::R, false),
                            [url],
                        ));
                    }
                    String::new()
                }
            };
            (kind, author, content)
        }
        Plan::Note { author, .. } => {
            hashtags(&mut rng, &mut tags);
            (1, author, text(&mut rng, 20, 280))
        }
        Plan::Response { kind, author } => {
            let back = (recent.len() as f64 * rng.f64().powi(2)) as usize;
            let (id, their_author) = recent[recent.len() - 1 - back.min(recent.len() - 1)];
            tags.push(Tag::event(id));
            tags.push(Tag::public_key(their_author));
            let content = match kind {
                1 => {
                    hashtags(&mut rng, &mut tags);
                    text(&mut rng, 5, 200)
                }
                7 => ["+", "🤙", "❤️", "🔥", "-"][rng.usize(..5)].to_owned(),
                _ => String::new(),
            };
            (kind, author, content)
        }
    };
    EventBuilder::new(Kind::from(kind), content)
        .tags(tags)
        .custom_created_at(Timestamp::from_secs(created_at))
        .sign_with_keys(&keys[author])
}

/// One or two hashtags on three notes in ten.
fn hashtags(rng: &mut fastrand::Rng, tags: &mut Vec<Tag>) {
    if rng.u8(..10) < 3 {
        for _ in 0..rng.usize(1..=2) {
            tags.push(Tag::hashtag(HASHTAGS[rng.usize(..HASHTAGS.len())]));
        }
    }
}

/// Words of random letters, `min` to `max` characters.
fn text(rng: &mut fastrand::Rng, min: usize, max: usize) -> String {
    let len = rng.usize(min..=max);
    (0..len)
        .map(|_| {
            if rng.u8(..7) == 0 {
                ' '
            } else {
                rng.alphanumeric()
            }
        })
        .collect()
}

/// What the benchmark keeps of the events to pick its filters' values.
#[derive(Debug, Default)]
pub(super) struct Sample {
    /// Every event's id.
    pub(super) ids: Vec<EventId>,
    /// Every event's author, as an index into `authors`.
    pub(super) author_of: Vec<u32>,
    /// Every event's `created_at`.
    pub(super) created_at: Vec<u64>,
    /// Every event's kind.
    pub(super) kinds: Vec<u16>,
    /// The distinct authors.
    pub(super) authors: Vec<PublicKey>,
    /// The value of every `e` tag, once per tag: a popular note as often
    /// as it is referred to.
    pub(super) referenced: Vec<EventId>,
    /// The authors some `p` tag names, each once.
    pub(super) tagged: Vec<PublicKey>,
}

impl Sample {
    /// Reads the events of `path` (without verifying them).
    pub(super) fn read(path: &Path) -> anyhow::Result<Self> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut sample = Self::default();
        let mut author_index = std::collections::HashMap::new();
        let mut tagged = HashSet::new();
        for (number, line) in (1..).zip(BufReader::with_capacity(1 << 20, file).lines()) {
            let line = line.with_context(|| format!("reading {}", path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            let event = Event::from_json(&line)
                .with_context(|| format!("parsing line {number} of {}", path.display()))?;
            let next = u32::try_from(sample.authors.len()).context("too many authors")?;
            let author = *author_index.entry(event.pubkey).or_insert_with(|| {
                sample.authors.push(event.pubkey);
                next
            });
            sample.ids.push(event.id);
            sample.author_of.push(author);
            sample.created_at.push(event.created_at.as_secs());
            sample.kinds.push(event.kind.as_u16());
            // Contact lists are left out: a `p` tag value picked from them
            // would be an active author, tagged thousands of times.
            if event.kind != Kind::ContactList {
                sample.referenced.extend(event.tags.event_ids().copied());
                tagged.extend(event.tags.public_keys().copied());
            }
        }
        let mut tagged: Vec<PublicKey> = tagged.into_iter().collect();
        tagged.sort_unstable();
        sample.tagged = tagged;
        Ok(sample)
    }

    /// Events read.
    pub(super) fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_has_one_replaceable_of_each_kind_per_author_then_mostly_notes() {
        let count = 90_000;
        let authors = authors(count);
        assert_eq!(authors, 300);
        let plans: Vec<Plan> = (0..count).map(|i| Plan::of(i, count).0).collect();
        for (kind, block) in [0, 3, 10_002].into_iter().zip(plans.chunks(authors)) {
            for (author, plan) in block.iter().enumerate() {
                assert_eq!(*plan, Plan::Replaceable { kind, author });
            }
        }
        let rest = &plans[3 * authors..];
        let share = |f: &dyn Fn(&Plan) -> bool| {
            rest.iter().filter(|plan| f(plan)).count() as f64 / rest.len() as f64
        };
        let kind1 = share(&|p| matches!(p, Plan::Note { .. } | Plan::Response { kind: 1, .. }));
        assert!((0.62..0.68).contains(&kind1), "{kind1}");
        let reactions = share(&|p| matches!(p, Plan::Response { kind: 7, .. }));
        assert!((0.22..0.28).contains(&reactions), "{reactions}");
        let popular = share(&|p| matches!(p, Plan::Note { popular: true, .. }));
        assert!((0.02..0.035).contains(&popular), "{popular}");
        // The first author writes far more than the last.
        let by = |a: usize| {
            rest.iter()
                .filter(|p| matches!(p, Plan::Note { author, .. } | Plan::Response { author, .. } if *author == a))
                .count()
        };
        assert!(
            by(0) > 50 * by(authors - 1).max(1),
            "{} {}",
            by(0),
            by(authors - 1)
        );
        assert_eq!(Plan::of(5000, count), Plan::of(5000, count));
    }

    #[test]
    fn events_follow_each_other_over_a_year() {
        let count = 10_000;
        let first = 3 * authors(count);
        let at = |index: usize| {
            let (plan, mut rng) = Plan::of(index, count);
            plan.created_at(index, count, &mut rng)
        };
        assert!(at(first) < EPOCH + 600);
        assert!(at(count - 1) >= EPOCH + YEAR - YEAR / 1000);
        assert!(at(first + 1000) < at(first + 2000));
    }

    #[test]
    fn a_small_file_is_written_read_back_and_refers_to_earlier_notes() {
        let dir = std::env::temp_dir().join(format!("bench-relay-events-{}", std::process::id()));
        let count = 12_000;
        let (path, generated) = ensure(&dir, count, 2).expect("written");
        assert!(generated);
        assert!(!ensure(&dir, count, 2).expect("reused").1);
        let sample = Sample::read(&path).expect("read");
        assert_eq!(sample.len(), count);
        assert_eq!(sample.authors.len(), authors(count));
        assert!(!sample.referenced.is_empty());
        let ids: HashSet<EventId> = sample.ids.iter().copied().collect();
        assert!(sample.referenced.iter().all(|id| ids.contains(id)));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
