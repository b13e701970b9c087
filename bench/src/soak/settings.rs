//! What a soak run does, from the command line or the environment: the
//! cases, the events, the relays, how often to sample and for how long.

use std::time::Duration;

use super::case::Case;
use crate::cli::{count, Locations, Shared};
use crate::workers;

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

/// The settings of the soak run.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The cases: honest, capped, nip77, nip77-again (runs nip77 first,
    /// whose archive it needs), hostile, several separated by commas, or
    /// all (every case but hostile)
    #[arg(
        long = "case",
        env = "BENCH_SOAK_CASE",
        value_name = "CASES",
        default_value = "all"
    )]
    cases: String,
    /// Distinct events
    #[arg(
        long,
        env = "BENCH_SOAK_EVENTS",
        value_name = "COUNT",
        default_value_t = DEFAULT_EVENTS,
        value_parser = count
    )]
    events: usize,
    /// Relays, at most 20 [default: 2, and 4 for hostile]
    #[arg(long, env = "BENCH_SOAK_RELAYS", value_name = "COUNT", value_parser = count)]
    relays: Option<usize>,
    /// Seconds between samples
    #[arg(
        long,
        env = "BENCH_SOAK_SAMPLE_SECS",
        value_name = "SECONDS",
        default_value_t = DEFAULT_SAMPLE_SECS,
        value_parser = count
    )]
    sample_secs: usize,
    /// Longest run of the synchronizer in seconds, per case
    #[arg(
        long,
        env = "BENCH_SOAK_SECS",
        value_name = "SECONDS",
        default_value_t = DEFAULT_SECS,
        value_parser = count
    )]
    secs: usize,
    /// The settings every benchmark takes.
    #[command(flatten)]
    shared: Shared,
}

/// What a soak run does, from its settings.
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
    pub(super) fn new(args: &Args) -> anyhow::Result<Self> {
        let relays = args.relays.unwrap_or(DEFAULT_RELAYS);
        anyhow::ensure!(
            relays <= MAX_RELAYS,
            "BENCH_SOAK_RELAYS must be at most {MAX_RELAYS}"
        );
        let hostile_relays = if args.relays.is_some() {
            relays
        } else {
            HOSTILE_RELAYS
        };
        Ok(Self {
            cases: Case::list(&args.cases)?,
            events: args.events,
            relays,
            hostile_relays,
            sample: secs(args.sample_secs),
            limit: secs(args.secs),
            locations: Locations::new(&args.shared)?,
            keep: args.shared.keep_db,
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
