//! The benchmark corpus: signed events written once as JSON lines and read
//! back on later runs.
//!
//! Every event has three tags (`e`, `p`, `t`) and 130 characters of
//! content, like the rows the rates in the stack notes were measured with.
//! Every other event is also listed in a second file, as the sightings of a
//! second relay.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use nostr::{Event, EventBuilder, EventId, JsonUtil, Keys, Kind, Tag, Timestamp};

/// Authors the events are spread over.
const AUTHORS: usize = 200;
/// Characters of content per event.
const CONTENT_LEN: usize = 130;
/// Events signed between two writes, so that a large corpus never sits in
/// memory whole.
const ROUND: usize = 20_000;
/// Kinds drawn from, text notes weighted most.
const KINDS: [u16; 10] = [1, 1, 1, 1, 1, 1, 7, 6, 1111, 42];
const HASHTAGS: [&str; 8] = [
    "nostr",
    "bitcoin",
    "zaps",
    "grownostr",
    "art",
    "music",
    "dev",
    "news",
];
/// Earliest `created_at` of the corpus; the others spread over 30 days.
const EPOCH: u64 = 1_700_000_000;

/// The files of a corpus of `count` events in `dir`.
#[derive(Debug, Clone)]
pub(crate) struct CorpusFiles {
    /// Every event, one JSON line each.
    pub(crate) all: PathBuf,
    /// Every other event of `all` (the first, the third, …): what the second
    /// relay served. `None` when the corpus has no second relay.
    pub(crate) second_relay: Option<PathBuf>,
    /// Events in `all`.
    pub(crate) count: usize,
}

impl CorpusFiles {
    fn in_dir(dir: &Path, count: usize, second_relay: bool) -> Self {
        Self {
            all: dir.join(format!("corpus-{count}.jsonl")),
            second_relay: second_relay
                .then(|| dir.join(format!("corpus-{count}.second-relay.jsonl"))),
            count,
        }
    }

    /// Events seen on the second relay.
    pub(crate) fn second_relay_count(&self) -> usize {
        if self.second_relay.is_some() {
            self.count.div_ceil(2)
        } else {
            0
        }
    }

    fn present(&self) -> bool {
        self.all.is_file() && self.second_relay.as_ref().is_none_or(|path| path.is_file())
    }
}

/// The corpus of `count` events in `dir`, with the file of a second relay
/// when `second_relay`, signed now on `workers` threads unless a previous
/// run left it there. Returns whether it was generated.
pub(crate) fn ensure(
    dir: &Path,
    count: usize,
    second_relay: bool,
    workers: usize,
) -> anyhow::Result<(CorpusFiles, bool)> {
    let files = CorpusFiles::in_dir(dir, count, second_relay);
    if files.present() {
        return Ok((files, false));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut outputs = vec![(JsonLines::create(&files.all)?, 1)];
    if let Some(path) = &files.second_relay {
        outputs.push((JsonLines::create(path)?, 2));
    }
    let keys: Vec<Keys> = (0..AUTHORS).map(|_| Keys::generate()).collect();
    let mut done = 0;
    while done < count {
        let round = ROUND.min(count - done);
        for (index, line) in (done..).zip(sign_round(&keys, done, round, workers)?) {
            for (writer, every) in &mut outputs {
                if index % *every == 0 {
                    writer.write(&line)?;
                }
            }
        }
        done += round;
    }
    for (writer, _) in outputs {
        writer.finish()?;
    }
    Ok((files, true))
}

/// A JSON-lines file being written: under a temporary name until
/// [`finish`](Self::finish) renames it, so that an interrupted run leaves
/// nothing a later run would take for a whole file.
pub(crate) struct JsonLines {
    writer: BufWriter<File>,
    partial: PathBuf,
    path: PathBuf,
}

impl JsonLines {
    /// Starts writing `path`.
    pub(crate) fn create(path: &Path) -> anyhow::Result<Self> {
        let partial = path.with_extension("jsonl.partial");
        let file =
            File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
        Ok(Self {
            writer: BufWriter::with_capacity(1 << 20, file),
            partial,
            path: path.to_owned(),
        })
    }

    /// Appends `line` and a newline.
    pub(crate) fn write(&mut self, line: &str) -> anyhow::Result<()> {
        self.writer
            .write_all(line.as_bytes())
            .and_then(|()| self.writer.write_all(b"\n"))
            .with_context(|| format!("writing {}", self.partial.display()))
    }

    /// Flushes the file to disk and gives it its name.
    pub(crate) fn finish(self) -> anyhow::Result<()> {
        self.writer
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)
            .and_then(|file| file.sync_all())
            .with_context(|| format!("writing {}", self.partial.display()))?;
        std::fs::rename(&self.partial, &self.path)
            .with_context(|| format!("renaming to {}", self.path.display()))
    }
}

/// Signs events `first..first + count` on `workers` threads and returns
/// their JSON, in order.
fn sign_round(
    keys: &[Keys],
    first: usize,
    count: usize,
    workers: usize,
) -> anyhow::Result<Vec<String>> {
    sign_round_with(keys, first, count, workers, &sign_one)
}

/// Signs events `first..first + count` with `sign` (given the authors, the
/// event's index and a random generator of its thread) on `workers`
/// threads and returns their JSON, in order.
pub(crate) fn sign_round_with<F>(
    keys: &[Keys],
    first: usize,
    count: usize,
    workers: usize,
    sign: &F,
) -> anyhow::Result<Vec<String>>
where
    F: Fn(&[Keys], usize, &mut fastrand::Rng) -> Result<Event, nostr::event::builder::Error> + Sync,
{
    let per_worker = count.div_ceil(workers.max(1));
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..count)
            .step_by(per_worker)
            .map(|start| {
                let end = (start + per_worker).min(count);
                scope.spawn(move || {
                    let mut rng = fastrand::Rng::new();
                    (first + start..first + end)
                        .map(|index| sign(keys, index, &mut rng).map(|event| event.as_json()))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut lines = Vec::with_capacity(count);
        for handle in handles {
            let part = handle
                .join()
                .map_err(|_| anyhow::anyhow!("a signing thread panicked"))?
                .context("signing an event")?;
            lines.extend(part);
        }
        Ok(lines)
    })
}

fn sign_one(
    keys: &[Keys],
    index: usize,
    rng: &mut fastrand::Rng,
) -> Result<Event, nostr::event::builder::Error> {
    let created_at = EPOCH + rng.u64(..30 * 86_400);
    sign_note(
        keys,
        index,
        rng,
        Kind::from(KINDS[index % KINDS.len()]),
        created_at,
    )
}

/// An event of `kind` created at `created_at` by author `index` (modulo the
/// authors), with an `e`, a `p` and a `t` tag and [`CONTENT_LEN`]
/// characters of content drawn from `rng`.
pub(crate) fn sign_note(
    keys: &[Keys],
    index: usize,
    rng: &mut fastrand::Rng,
    kind: Kind,
    created_at: u64,
) -> Result<Event, nostr::event::builder::Error> {
    let author = &keys[index % keys.len()];
    let tagged = keys[rng.usize(..keys.len())].public_key();
    let mut referenced = [0_u8; 32];
    rng.fill(&mut referenced);
    let content: String = (0..CONTENT_LEN)
        .map(|_| {
            if rng.u8(..8) == 0 {
                ' '
            } else {
                rng.alphanumeric()
            }
        })
        .collect();
    let tags = [
        Tag::event(EventId::from_byte_array(referenced)),
        Tag::public_key(tagged),
        Tag::hashtag(HASHTAGS[rng.usize(..HASHTAGS.len())]),
    ];
    EventBuilder::new(kind, content)
        .tags(tags)
        .custom_created_at(Timestamp::from_secs(created_at))
        .sign_with_keys(author)
}

/// Reads every event of a JSON-lines file (without verifying them).
pub(crate) fn load(path: &Path) -> anyhow::Result<Vec<Event>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut events = Vec::new();
    for (number, line) in (1..).zip(BufReader::with_capacity(1 << 20, file).lines()) {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        events.push(
            Event::from_json(&line)
                .with_context(|| format!("parsing line {number} of {}", path.display()))?,
        );
    }
    Ok(events)
}
