//! Readings during and after a run: the archive's counts and the
//! synchronizer's memory, sampled until the goal is reached, and what the
//! archive holds at the end.

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bigbrotr_pool::{ConnectionPool, Type};
use nostr::Timestamp;

use super::case::Goal;
use super::fixtures::Layout;
use super::print::mb;
use super::settings::Settings;
use super::statistics::rate;
use super::POLL;
use crate::child;
use crate::child::Running;
use crate::output::{group, progress};

/// One reading of the archive and of the synchronizer's memory.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sample {
    /// Since the synchronizer started.
    pub(super) at: Duration,
    pub(super) events: u64,
    pub(super) sightings: u64,
    /// `VmRSS` in bytes.
    pub(super) rss: Option<u64>,
    /// `VmHWM` in bytes.
    pub(super) peak: Option<u64>,
    /// The goal of the run is reached.
    pub(super) done: bool,
}

/// Samples the archive and the child's memory every `settings.sample`
/// until `goal` is reached, the time is up, or the child exits (returned
/// with its status).
pub(super) async fn sample(
    settings: &Settings,
    running: &mut Running,
    pool: &ConnectionPool,
    layout: &Layout,
    goal: Goal,
    start: Instant,
) -> anyhow::Result<(Vec<Sample>, Option<ExitStatus>)> {
    let pid = running.pid();
    let mut samples: Vec<Sample> = Vec::new();
    let mut number: u32 = 0;
    loop {
        // The next due time still ahead, even after a slow sample.
        let passed = start.elapsed().as_nanos() / settings.sample.as_nanos().max(1);
        number = number.max(u32::try_from(passed).unwrap_or(u32::MAX)) + 1;
        let due = start + settings.sample * number;
        while Instant::now() < due {
            if let Some(status) = running
                .child
                .try_wait()
                .context("waiting for the synchronizer")?
            {
                progress(&format!("  the synchronizer exited on its own ({status})"));
                return Ok((samples, Some(status)));
            }
            tokio::time::sleep(POLL.min(due.saturating_duration_since(Instant::now()))).await;
        }
        let memory = child::memory(pid);
        let at = start.elapsed();
        let counts = async {
            let (events, sightings) = archived(pool).await?;
            let done = match goal {
                Goal::Archived => sightings >= layout.sightings && events >= layout.events,
                Goal::Walked { newest, relays } => walked_past(pool, newest).await? >= relays,
            };
            anyhow::Ok((events, sightings, done))
        };
        let (events, sightings, done) = match counts.await {
            Ok(counts) => counts,
            Err(error) => {
                progress(&format!(
                    "  no sample at {:.0} s: {error:#}",
                    at.as_secs_f64()
                ));
                if at >= settings.limit {
                    return Ok((samples, None));
                }
                continue;
            }
        };
        let current = Sample {
            at,
            events,
            sightings,
            rss: memory.map(|memory| memory.rss),
            peak: memory.map(|memory| memory.peak),
            done,
        };
        let rate = samples.last().map_or_else(
            || rate(sightings, at),
            |previous| {
                rate(
                    sightings - previous.sightings.min(sightings),
                    at - previous.at,
                )
            },
        );
        println!(
            "{:>7.1}  {:>10}  {:>10}  {:>5.1}%  {:>12}  {:>7}  {:>8}",
            at.as_secs_f64(),
            group(events as f64),
            group(sightings as f64),
            100.0 * sightings as f64 / layout.sightings.max(1) as f64,
            group(rate),
            mb(current.rss),
            mb(current.peak),
        );
        samples.push(current);
        if done || at >= settings.limit {
            return Ok((samples, None));
        }
    }
}

/// The events and sightings archived, counted in one statement: from one
/// snapshot, so that no sighting is counted without its event.
pub(super) async fn archived(pool: &ConnectionPool) -> anyhow::Result<(u64, u64)> {
    let row = pool
        .fetch_one(
            "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM events_relays)",
            &[],
        )
        .await
        .context("counting the archived events and sightings")?;
    let (events, sightings): (i64, i64) = (row.get(0), row.get(1));
    Ok((
        u64::try_from(events).context("a negative count")?,
        u64::try_from(sightings).context("a negative count")?,
    ))
}

/// The relays whose cursor is past `newest`: every event they hold was
/// walked.
async fn walked_past(pool: &ConnectionPool, newest: Timestamp) -> anyhow::Result<usize> {
    let newest = i64::try_from(newest.as_secs()).context("a timestamp past 2^63")?;
    let row = pool
        .fetch_one(
            "SELECT count(*) FROM sync_cursors WHERE created_at > $1",
            &[(&newest, Type::INT8)],
        )
        .await
        .context("counting the relays walked to the end")?;
    let count: i64 = row.get(0);
    usize::try_from(count).context("a negative count")
}

/// Sightings archived per relay URL.
pub(super) async fn sightings_per_relay(
    pool: &ConnectionPool,
) -> anyhow::Result<Vec<(String, u64)>> {
    let rows = pool
        .fetch_all(
            "SELECT r.url, count(er.event_id) FROM relays AS r \
             LEFT JOIN events_relays AS er ON er.relay_id = r.id GROUP BY r.url",
            &[],
        )
        .await
        .context("counting the sightings of each relay")?;
    rows.iter()
        .map(|row| {
            let count: i64 = row.get(1);
            Ok((
                row.get(0),
                u64::try_from(count).context("a negative count")?,
            ))
        })
        .collect()
}

/// One row of `quarantine`.
#[derive(Debug)]
pub(super) struct Quarantined {
    pub(super) url: String,
    pub(super) created_at: Option<i64>,
    /// In hex.
    pub(super) event_id: Option<String>,
    pub(super) size: Option<i64>,
    pub(super) reason: String,
}

/// Every row of `quarantine`, with its relay's URL.
pub(super) async fn quarantine_rows(pool: &ConnectionPool) -> anyhow::Result<Vec<Quarantined>> {
    let rows = pool
        .fetch_all(
            "SELECT r.url, q.created_at, encode(q.event_id, 'hex'), q.size, q.reason \
             FROM quarantine AS q JOIN relays AS r ON r.id = q.relay_id \
             ORDER BY r.url, q.created_at, q.id",
            &[],
        )
        .await
        .context("reading the quarantine")?;
    Ok(rows
        .iter()
        .map(|row| Quarantined {
            url: row.get(0),
            created_at: row.get(1),
            event_id: row.get(2),
            size: row.get(3),
            reason: row.get(4),
        })
        .collect())
}
