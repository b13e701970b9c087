//! What the synchronizer archives from: the signed events (written once,
//! reused by later runs), the oversized events of the hostile case, the
//! relays' stores and the relays themselves.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use nostr::{Event, EventBuilder, JsonUtil, Keys, Kind, Timestamp};

use super::relay::{Behaviour, BenchRelay};
use crate::corpus::{self, JsonLines};
use crate::store::{RawEvent, WindowStore};

/// Events over the synchronizer's size limits held by every hostile relay,
/// each alone in its second.
pub(super) const GIANTS: usize = 3;
/// Bytes of content of each of them: far over the default
/// `synchronizer.sizes.max_message` (5 MiB).
pub(super) const GIANT_CONTENT: usize = 64 << 20;
/// Authors the events are spread over.
const AUTHORS: usize = 300;
/// Events signed between two writes of the event file.
const ROUND: usize = 20_000;
/// The events are created during the `SPREAD` before the `NEWEST_AGE`
/// before their generation: always before `now - end_lag`.
const SPREAD: Duration = Duration::from_secs(30 * 86_400);
/// See [`SPREAD`].
const NEWEST_AGE: Duration = Duration::from_secs(3600);

/// What the archive must hold at the end.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    /// The events each relay holds: a range of the generated ones.
    pub(super) ranges: Vec<Range<usize>>,
    /// Distinct events.
    pub(super) events: u64,
    /// (event, relay) sightings.
    pub(super) sightings: u64,
    /// Events every relay holds besides its range, too large to archive:
    /// each must be recorded in `quarantine` for each relay, never stored.
    pub(super) giants: Vec<Arc<RawEvent>>,
}

impl Layout {
    /// `events` over `relays` relays, each holding a contiguous range of
    /// three `(relays + 2)`-ths of them, each range starting one such part
    /// after the previous one: with 2 relays, the first holds the first
    /// 3/4, the second the last 3/4, and the middle half is on both. The
    /// ranges cover every event; with one relay, it holds them all.
    pub(super) fn new(events: usize, relays: usize) -> Self {
        let parts = relays + 2;
        let ranges: Vec<Range<usize>> = (0..relays)
            .map(|index| index * events / parts..((index + 3) * events / parts).min(events))
            .collect();
        let sightings = ranges.iter().map(ExactSizeIterator::len).sum::<usize>();
        Self {
            ranges,
            events: events as u64,
            sightings: sightings as u64,
            giants: Vec::new(),
        }
    }
}

/// The event file of `count` events in `dir`, signed now on `workers`
/// threads unless an earlier run left it. Returns whether it was generated.
pub(super) fn ensure_events(
    dir: &Path,
    count: usize,
    workers: usize,
) -> anyhow::Result<(PathBuf, bool)> {
    let path = dir.join(format!("soak-{count}.jsonl"));
    if path.is_file() {
        return Ok((path, false));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut writer = JsonLines::create(&path)?;
    let keys: Vec<Keys> = (0..AUTHORS).map(|_| Keys::generate()).collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?;
    let newest = now.saturating_sub(NEWEST_AGE).as_secs();
    let sign = |keys: &[Keys], index: usize, rng: &mut fastrand::Rng| {
        let created_at = newest.saturating_sub(rng.u64(..SPREAD.as_secs()));
        corpus::sign_note(keys, index, rng, Kind::TextNote, created_at)
    };
    let mut done = 0;
    while done < count {
        let round = ROUND.min(count - done);
        for line in corpus::sign_round_with(&keys, done, round, workers, &sign)? {
            writer.write(&line)?;
        }
        done += round;
    }
    writer.finish()?;
    Ok((path, true))
}

/// One store per range of `layout`, holding those of `events` and the
/// layout's giants.
pub(super) fn make_stores(
    events: &[Arc<Event>],
    layout: &Layout,
) -> anyhow::Result<Vec<Arc<WindowStore>>> {
    let mut stores = Vec::with_capacity(layout.ranges.len());
    for range in &layout.ranges {
        let part = events.get(range.clone()).unwrap_or_default().to_vec();
        let store = WindowStore::new(part).with_raw(&layout.giants);
        anyhow::ensure!(
            store.len() == range.len(),
            "the events are not all distinct"
        );
        stores.push(Arc::new(store));
    }
    Ok(stores)
}

/// [`GIANTS`] events of [`GIANT_CONTENT`] bytes of content, each alone in
/// its second (a second none of `events` has) spread over theirs, signed
/// once: their JSON is shared by every relay serving them.
pub(super) fn sign_giants(events: &[Arc<Event>]) -> anyhow::Result<Vec<Arc<RawEvent>>> {
    let mut taken: HashSet<u64> = events
        .iter()
        .map(|event| event.created_at.as_secs())
        .collect();
    let oldest = taken.iter().min().copied().unwrap_or_default();
    let newest = taken.iter().max().copied().unwrap_or_default();
    let keys = Keys::generate();
    let mut giants = Vec::with_capacity(GIANTS);
    for index in 1..=GIANTS as u64 {
        let mut second = oldest + (newest - oldest) * index / (GIANTS as u64 + 1);
        while !taken.insert(second) {
            second += 1;
        }
        let mut content = format!("giant {index} ");
        content.extend(std::iter::repeat_n('x', GIANT_CONTENT - content.len()));
        let event = EventBuilder::new(Kind::TextNote, content)
            .custom_created_at(Timestamp::from_secs(second))
            .sign_with_keys(&keys)
            .context("signing a giant event")?;
        giants.push(Arc::new(RawEvent {
            id: event.id,
            created_at: event.created_at,
            json: event.as_json().into(),
        }));
    }
    Ok(giants)
}

/// Starts one relay per store, behaving as `behaviour` says.
pub(super) async fn start_relays(
    stores: &[Arc<WindowStore>],
    behaviour: Behaviour,
) -> anyhow::Result<Vec<BenchRelay>> {
    let mut relays = Vec::with_capacity(stores.len());
    for store in stores {
        relays.push(BenchRelay::start(Arc::clone(store), behaviour).await?);
    }
    Ok(relays)
}

/// Every event of a JSON-lines file, in order, parsed on `workers`
/// threads (without verifying them).
pub(super) fn read_events(path: &Path, workers: usize) -> anyhow::Result<Vec<Arc<Event>>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut lines = BufReader::with_capacity(1 << 20, file).lines();
    let mut events = Vec::new();
    loop {
        let round: Vec<String> = lines
            .by_ref()
            .take(ROUND)
            .collect::<Result<_, _>>()
            .with_context(|| format!("reading {}", path.display()))?;
        if round.is_empty() {
            return Ok(events);
        }
        let first = events.len();
        let per_worker = round.len().div_ceil(workers.max(1));
        let parsed: Vec<anyhow::Result<Vec<Arc<Event>>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = round
                .chunks(per_worker)
                .enumerate()
                .map(|(part, lines)| {
                    scope.spawn(move || {
                        lines
                            .iter()
                            .enumerate()
                            .filter(|(_, line)| !line.trim().is_empty())
                            .map(|(offset, line)| {
                                Event::from_json(line).map(Arc::new).with_context(|| {
                                    format!(
                                        "parsing event {} of {}",
                                        first + part * per_worker + offset + 1,
                                        path.display()
                                    )
                                })
                            })
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .map_err(|_| anyhow::anyhow!("a parsing thread panicked"))?
                })
                .collect()
        });
        for part in parsed {
            events.extend(part?);
        }
    }
}
