//! What a soak run does, from the environment: the cases, the events, the
//! relays, how often to sample and for how long.

use std::time::Duration;

use super::case::Case;
use crate::{env_count, env_flag, workers, Locations};

/// Events generated when `BENCH_SOAK_EVENTS` is not set.
const DEFAULT_EVENTS: usize = 1_200_000;
/// Relays started when `BENCH_SOAK_RELAYS` is not set.
const DEFAULT_RELAYS: usize = 2;
/// Relays of the hostile case when `BENCH_SOAK_RELAYS` is not set.
const HOSTILE_RELAYS: usize = 4;
/// The most relays: the synchronizer's default `concurrency.clearnet`, so
/// that every relay is synced at once.
const MAX_RELAYS: usize = 20;
/// Seconds between two samples when `BENCH_SOAK_SAMPLE_SECS` is not set.
const DEFAULT_SAMPLE_SECS: usize = 5;
/// Time limit of the run in seconds when `BENCH_SOAK_SECS` is not set.
const DEFAULT_SECS: usize = 300;

/// What a soak run does, from the environment.
#[derive(Debug)]
pub(super) struct Settings {
    pub(super) cases: Vec<Case>,
    pub(super) events: usize,
    relays: usize,
    /// Relays of the hostile case.
    hostile_relays: usize,
    pub(super) sample: Duration,
    pub(super) limit: Duration,
    pub(super) locations: Locations,
    pub(super) keep: bool,
    pub(super) workers: usize,
}

impl Settings {
    pub(super) fn from_env() -> anyhow::Result<Self> {
        let relays = env_count("BENCH_SOAK_RELAYS", DEFAULT_RELAYS)?;
        anyhow::ensure!(
            relays <= MAX_RELAYS,
            "BENCH_SOAK_RELAYS must be at most {MAX_RELAYS}"
        );
        let hostile_relays = if std::env::var_os("BENCH_SOAK_RELAYS").is_some() {
            relays
        } else {
            HOSTILE_RELAYS
        };
        Ok(Self {
            cases: Case::from_env()?,
            events: env_count("BENCH_SOAK_EVENTS", DEFAULT_EVENTS)?,
            relays,
            hostile_relays,
            sample: secs(env_count("BENCH_SOAK_SAMPLE_SECS", DEFAULT_SAMPLE_SECS)?),
            limit: secs(env_count("BENCH_SOAK_SECS", DEFAULT_SECS)?),
            locations: Locations::from_env()?,
            keep: env_flag("BENCH_KEEP_DB"),
            workers: workers(),
        })
    }

    /// Relays of the run of `case`.
    pub(super) fn relays_of(&self, case: Case) -> usize {
        if case == Case::Hostile {
            self.hostile_relays
        } else {
            self.relays
        }
    }
}

/// `count` seconds.
fn secs(count: usize) -> Duration {
    Duration::from_secs(u64::try_from(count).unwrap_or(u64::MAX))
}
