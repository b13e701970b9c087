//! The soak benchmark of the synchronizer (`bigbrotr-bench soak`): the
//! release `bigbrotr run synchronizer` archives signed events from relays
//! running in this process into a fresh database, while its resident memory
//! and the archive's growth are sampled.
//!
//! The relays hold overlapping parts of one set of events, so the number of
//! distinct events and of (event, relay) sightings the archive must end up
//! with is known exactly. The run ends when every sighting is archived or
//! its time is up; the synchronizer is then stopped with `SIGTERM` and must
//! exit cleanly.
//!
//! Each case (`BENCH_SOAK_CASE`) has relays behaving in one way: honest,
//! silently capped, speaking NIP-77, and NIP-77 again over the archive the
//! previous case left, which must download nothing. The synchronizer's own
//! counters, read from its `/metrics`, tell what each way costs. A last
//! case, run only when asked for, has hostile relays: events far over the
//! synchronizer's size limits, garbage and forged copies among the events.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use bigbrotr_config::Implementation;
use bigbrotr_pool::{ConnectionPool, Type};
use nostr::{Event, EventBuilder, JsonUtil, Keys, Kind, Timestamp};
use serde_yaml::{Mapping, Value};

use crate::child::{self, Bigbrotr};
use crate::corpus;
use crate::cpu::{self, CpuSnapshot};
use crate::db::{BenchDb, Server};
use crate::relay::{Behaviour, BenchRelay};
use crate::scrape::{self, Metrics};
use crate::store::{RawEvent, WindowStore};
use crate::{
    env_count, env_flag, group, load_average, megabytes, progress, workers, Locations,
    IMPLEMENTATION,
};

/// Events generated when `BENCH_SOAK_EVENTS` is not set.
const DEFAULT_EVENTS: usize = 1_200_000;
/// Relays started when `BENCH_SOAK_RELAYS` is not set.
const DEFAULT_RELAYS: usize = 2;
/// Relays of the hostile case when `BENCH_SOAK_RELAYS` is not set.
const HOSTILE_RELAYS: usize = 4;
/// Events over the synchronizer's size limits held by every hostile relay,
/// each alone in its second.
const GIANTS: usize = 3;
/// Bytes of content of each of them: far over the default
/// `synchronizer.sizes.max_message` (5 MiB).
const GIANT_CONTENT: usize = 64 << 20;
/// The most relays: the synchronizer's default `concurrency.clearnet`, so
/// that every relay is synced at once.
const MAX_RELAYS: usize = 20;
/// Seconds between two samples when `BENCH_SOAK_SAMPLE_SECS` is not set.
const DEFAULT_SAMPLE_SECS: usize = 5;
/// Time limit of the run in seconds when `BENCH_SOAK_SECS` is not set.
const DEFAULT_SECS: usize = 300;

/// Authors the events are spread over.
const AUTHORS: usize = 300;
/// Events signed between two writes of the event file.
const ROUND: usize = 20_000;
/// The events are created during the `SPREAD` before the `NEWEST_AGE`
/// before their generation: always before `now - end_lag`.
const SPREAD: Duration = Duration::from_secs(30 * 86_400);
/// See [`SPREAD`].
const NEWEST_AGE: Duration = Duration::from_secs(3600);
/// The synchronizer's cycle interval in the soak run: a relay caught up is
/// synced again a second later.
const LOOP_INTERVAL: &str = "1s";
/// The synchronizer's HTTP endpoint in the soak run: any free port on
/// loopback, so it cannot collide with a running service.
const HTTP_LISTEN: &str = "127.0.0.1:0";
/// Where the relays listen, allowed by the copied egress policy (which
/// refuses loopback by default).
const RELAY_NETWORK: &str = "127.0.0.1/32";
/// How often the child is checked for an early exit between samples.
const POLL: Duration = Duration::from_millis(200);
/// How long the synchronizer may take to exit after `SIGTERM` before it is
/// killed: longer than the default `runtime.shutdown_grace` (30 s) plus
/// `pool_close_grace`.
const STOP_WAIT: Duration = Duration::from_secs(60);
/// RSS growth per 100 000 sightings below which the memory is called flat:
/// 10 bytes a sighting, less than any per-event leak could be.
const FLAT_GROWTH: f64 = 1_000_000.0;
/// How far the peak RSS may rise over the last quarter of a run and still
/// count as levelled off: allocator noise.
const NEW_HIGH_MARGIN: f64 = 2_000_000.0;
/// Samples after 10 % archived needed for a verdict on the RSS growth.
const MIN_VERDICT_SAMPLES: usize = 5;
/// Sections of the overrides (`BIGBROTR_<SECTION>__<KEY>`) the child does
/// not inherit: the soak run sets them itself.
const OWN_SECTIONS: [&str; 6] = [
    "SERVICE",
    "LOOP",
    "NOSTR",
    "SYNCHRONIZER",
    "RUNTIME",
    "LOGGING",
];
/// Name of the child's output files in the bench folder, followed by the
/// case's name.
const LABEL: &str = "soak-synchronizer";
/// The most events a capped relay returns to one `REQ`.
const CAP: usize = 100;
/// How long to wait, once everything is archived, for the synchronizer's
/// cycle to end: its counters are added to at the end of a cycle.
const SETTLE_WAIT: Duration = Duration::from_secs(120);
/// The synchronizer's metrics read for the summary.
const REQUESTS: &str = "bigbrotr_synchronizer_requests_total";
const RECEIVED_BYTES: &str = "bigbrotr_synchronizer_received_bytes_total";
const RECEIVED: &str = "bigbrotr_synchronizer_events_received_total";
const STORED: &str = "bigbrotr_synchronizer_events_stored_total";
const RECONCILIATIONS: &str = "bigbrotr_synchronizer_reconciliations_total";
const SIGHTINGS: &str = "bigbrotr_synchronizer_sightings_total";
const RELAY_SYNCS: &str = "bigbrotr_synchronizer_relays_total";
const REJECTED: &str = "bigbrotr_synchronizer_events_rejected_total";

/// How the relays of a run behave, and what ends the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    /// Every `REQ` answered up to its `limit`; no NIP-77.
    Honest,
    /// At most [`CAP`] events per `REQ`, unannounced; no NIP-77.
    Capped,
    /// NIP-77 relays.
    Nip77,
    /// The NIP-77 relays again, on the archive of [`Case::Nip77`] with
    /// every cursor reset: everything is walked again and nothing must be
    /// downloaded.
    Nip77Again,
    /// Hostile relays (no NIP-77): [`GIANTS`] events over the size limits
    /// each, and garbage or a forged copy before every third event. Run
    /// only when asked for.
    Hostile,
}

impl Case {
    /// The cases of `all`.
    const ALL: [Self; 4] = [Self::Honest, Self::Capped, Self::Nip77, Self::Nip77Again];
    /// Every case, in the order they run.
    const KNOWN: [Self; 5] = [
        Self::Honest,
        Self::Capped,
        Self::Nip77,
        Self::Nip77Again,
        Self::Hostile,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Honest => "honest",
            Self::Capped => "capped",
            Self::Nip77 => "nip77",
            Self::Nip77Again => "nip77-again",
            Self::Hostile => "hostile",
        }
    }

    fn behaviour(self) -> Behaviour {
        match self {
            Self::Honest => Behaviour::Honest,
            Self::Capped => Behaviour::Capped(CAP),
            Self::Nip77 | Self::Nip77Again => Behaviour::Nip77,
            Self::Hostile => Behaviour::Hostile,
        }
    }

    /// The cases of `BENCH_SOAK_CASE` (default `all`), in the order they
    /// run; `nip77-again` brings `nip77` along, whose archive it needs.
    fn from_env() -> anyhow::Result<Vec<Self>> {
        let value = std::env::var("BENCH_SOAK_CASE").unwrap_or_default();
        let mut cases = Vec::new();
        for name in value.split(',').map(str::trim) {
            match name {
                "" | "all" => cases.extend(Self::ALL),
                "nip77-again" => cases.extend([Self::Nip77, Self::Nip77Again]),
                _ => cases.push(
                    Self::KNOWN
                        .into_iter()
                        .find(|case| case.name() == name)
                        .with_context(|| {
                            format!(
                                "BENCH_SOAK_CASE: unknown case `{name}` \
                                 (honest, capped, nip77, nip77-again, hostile or all)"
                            )
                        })?,
                ),
            }
        }
        Ok(Self::KNOWN
            .into_iter()
            .filter(|case| cases.contains(case))
            .collect())
    }
}

/// What ends a run, besides its time limit.
#[derive(Debug, Clone, Copy)]
enum Goal {
    /// Every event and sighting archived.
    Archived,
    /// Every relay's cursor past `newest`: all walked again.
    Walked { newest: Timestamp, relays: usize },
}

/// What one case measured, for the summary.
#[derive(Debug)]
struct CaseResult {
    case: Case,
    /// Events the run covered: all of them.
    events: u64,
    /// Relays of the run.
    relays: usize,
    /// Rows of `quarantine` at the end.
    quarantined: Option<u64>,
    /// From the synchronizer's start to the sample that saw the goal
    /// reached; `None` when it was not.
    took: Option<Duration>,
    /// The counters once the cycle that reached the goal ended.
    metrics: Option<Metrics>,
    /// Its peak RSS (`VmHWM`).
    peak: Option<u64>,
    /// The archive matched the relays, and the exit was clean.
    passed: bool,
}

/// What a soak run does, from the environment.
#[derive(Debug)]
struct Settings {
    cases: Vec<Case>,
    events: usize,
    relays: usize,
    /// Relays of the hostile case.
    hostile_relays: usize,
    sample: Duration,
    limit: Duration,
    locations: Locations,
    keep: bool,
    workers: usize,
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
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
    fn relays_of(&self, case: Case) -> usize {
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

/// What the archive must hold at the end.
#[derive(Debug, Clone)]
struct Layout {
    /// The events each relay holds: a range of the generated ones.
    ranges: Vec<Range<usize>>,
    /// Distinct events.
    events: u64,
    /// (event, relay) sightings.
    sightings: u64,
    /// Events every relay holds besides its range, too large to archive:
    /// each must be recorded in `quarantine` for each relay, never stored.
    giants: Vec<Arc<RawEvent>>,
}

impl Layout {
    /// `events` over `relays` relays, each holding a contiguous range of
    /// three `(relays + 2)`-ths of them, each range starting one such part
    /// after the previous one: with 2 relays, the first holds the first
    /// 3/4, the second the last 3/4, and the middle half is on both. The
    /// ranges cover every event; with one relay, it holds them all.
    fn new(events: usize, relays: usize) -> Self {
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

/// One reading of the archive and of the synchronizer's memory.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Since the synchronizer started.
    at: Duration,
    events: u64,
    sightings: u64,
    /// `VmRSS` in bytes.
    rss: Option<u64>,
    /// `VmHWM` in bytes.
    peak: Option<u64>,
    /// The goal of the run is reached.
    done: bool,
}

/// The synchronizer as a child process; killed when dropped while still
/// running (after an error of the benchmark itself).
struct Running {
    child: Child,
}

impl Running {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How the synchronizer ended.
#[derive(Debug)]
struct Stop {
    status: ExitStatus,
    /// It exited before the benchmark stopped it.
    early: bool,
    /// From `SIGTERM` to its exit.
    took: Duration,
    /// It did not exit in [`STOP_WAIT`] and was killed.
    killed: bool,
}

/// Runs the soak benchmark.
pub(crate) fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let binary = &settings.locations.binary;
    anyhow::ensure!(
        binary.is_file(),
        "{} not found: build it first (cargo build --release -p bigbrotr), or set BIGBROTR_BIN",
        binary.display()
    );
    let implementation = Implementation::open(&settings.locations.root, IMPLEMENTATION)
        .with_context(|| format!("opening implementation `{IMPLEMENTATION}`"))?;
    let server = Server::of(implementation)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(soak(&settings, &server))
}

/// Generates (or reuses) the events, loads them into the relays' stores,
/// runs each case on its own relays and database, and prints the summary.
async fn soak(settings: &Settings, server: &Server) -> anyhow::Result<()> {
    let dir = &settings.locations.dir;
    progress(&format!(
        "soak: {} events in {}; cases: {}",
        group(settings.events as f64),
        dir.display(),
        settings
            .cases
            .iter()
            .map(|case| case.name())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let started = Instant::now();
    let (events_file, generated) = ensure_events(dir, settings.events, settings.workers)?;
    progress(&format!(
        "  {} in {:.1} s",
        if generated {
            "signed and written"
        } else {
            "reused from an earlier run"
        },
        started.elapsed().as_secs_f64()
    ));
    let events = read_events(&events_file, settings.workers)?;
    anyhow::ensure!(
        events.len() == settings.events,
        "{} holds {} events, not {}",
        events_file.display(),
        events.len(),
        settings.events
    );
    let newest = events
        .iter()
        .map(|event| event.created_at)
        .max()
        .context("the relays hold no event")?;

    let mut results = Vec::new();
    // The NIP-77 cases share their relays and database: the second runs
    // on the archive the first left.
    let mut runs: Vec<Vec<Case>> = Vec::new();
    for &case in &settings.cases {
        match runs.last_mut() {
            Some(last) if case == Case::Nip77Again && last == &[Case::Nip77] => last.push(case),
            _ => runs.push(vec![case]),
        }
    }
    // The stores of the last layout, reused by the next run when it has the
    // same one.
    let mut loaded: Option<(Layout, Vec<Arc<WindowStore>>)> = None;
    for cases in runs {
        let case = cases[0];
        let relay_count = settings.relays_of(case);
        let hostile = case == Case::Hostile;
        let reusable = loaded.as_ref().is_some_and(|(layout, _)| {
            layout.ranges.len() == relay_count && layout.giants.is_empty() != hostile
        });
        if !reusable {
            // The previous stores go first: at full size they are large.
            drop(loaded.take());
            let mut layout = Layout::new(settings.events, relay_count);
            if hostile {
                let started = Instant::now();
                layout.giants = sign_giants(&events)?;
                progress(&format!(
                    "  {} events of {} each signed in {:.1} s, served by every relay",
                    layout.giants.len(),
                    megabytes(GIANT_CONTENT as u64),
                    started.elapsed().as_secs_f64()
                ));
            }
            let started = Instant::now();
            let stores = make_stores(&events, &layout)?;
            let own = child::memory(std::process::id());
            progress(&format!(
                "  {} relay stores loaded in {:.1} s ({} sightings; this process now holds {})",
                stores.len(),
                started.elapsed().as_secs_f64(),
                group(layout.sightings as f64),
                own.map_or_else(|| "?".to_owned(), |memory| megabytes(memory.rss))
            ));
            loaded = Some((layout, stores));
        }
        let Some((layout, stores)) = loaded.as_ref() else {
            anyhow::bail!("no relay stores loaded");
        };
        let relays = start_relays(stores, case.behaviour()).await?;
        let root = dir.join(format!("soak-root-{}", std::process::id()));
        let urls: Vec<String> = relays.iter().map(|relay| relay.url().to_owned()).collect();
        let outcome = match write_root(&settings.locations.root, &root, &urls) {
            Ok(()) => in_fresh_db(settings, server, &root, layout, &relays, &cases, newest).await,
            Err(error) => Err(error),
        };
        if root.exists() {
            if let Err(error) = std::fs::remove_dir_all(&root) {
                progress(&format!("  {} not removed: {error}", root.display()));
            }
        }
        results.extend(outcome?);
    }
    print_summary(&results, settings);
    Ok(())
}

/// Runs the synchronizer with the root folder `root` on a fresh database,
/// once per case of `cases`, dropped afterwards unless `BENCH_KEEP_DB` says
/// otherwise.
async fn in_fresh_db(
    settings: &Settings,
    server: &Server,
    root: &Path,
    layout: &Layout,
    relays: &[BenchRelay],
    cases: &[Case],
    newest: Timestamp,
) -> anyhow::Result<Vec<CaseResult>> {
    let db = server.create("soak").await?;
    let outcome = async {
        let bigbrotr = Bigbrotr {
            binary: settings.locations.binary.clone(),
            root: root.to_path_buf(),
            implementation: IMPLEMENTATION.to_owned(),
            log_dir: settings.locations.dir.clone(),
            env_remove: own_overrides(),
        };
        bigbrotr.run("soak-db-init", db.name(), &["db", "init"])?;
        let pool = server.pool(&db).await?;
        let mut results = Vec::new();
        for &case in cases {
            let goal = if case == Case::Nip77Again {
                reset_cursors(&pool).await?;
                Goal::Walked {
                    newest,
                    relays: relays.len(),
                }
            } else {
                Goal::Archived
            };
            let run = Run {
                settings,
                server,
                bigbrotr: &bigbrotr,
                db: &db,
                pool: &pool,
                layout,
                relays,
            };
            match run.case(case, goal).await {
                Ok(result) => results.push(result),
                Err(error) => {
                    pool.disconnect(Duration::from_secs(5)).await;
                    return Err(error);
                }
            }
        }
        pool.disconnect(Duration::from_secs(5)).await;
        Ok(results)
    }
    .await;
    let finished = db.finish(settings.keep).await;
    let results = outcome?;
    finished?;
    Ok(results)
}

/// Forgets every relay's cursor, so that the next run walks everything
/// again.
async fn reset_cursors(pool: &ConnectionPool) -> anyhow::Result<()> {
    pool.execute(
        "UPDATE sync_cursors SET created_at = NULL, event_id = NULL, filter_hash = NULL",
        &[],
    )
    .await
    .context("resetting the cursors")?;
    Ok(())
}

/// What a run of the synchronizer works with.
struct Run<'a> {
    settings: &'a Settings,
    server: &'a Server,
    bigbrotr: &'a Bigbrotr,
    db: &'a BenchDb,
    pool: &'a ConnectionPool,
    layout: &'a Layout,
    relays: &'a [BenchRelay],
}

impl Run<'_> {
    /// Runs the synchronizer on the database until `goal` is reached or the
    /// time is up, and reports.
    async fn case(&self, case: Case, goal: Goal) -> anyhow::Result<CaseResult> {
        let Self {
            settings,
            server,
            bigbrotr,
            db,
            pool,
            layout,
            relays,
        } = *self;
        let label = format!("{LABEL}-{}", case.name());
        let log = bigbrotr.output_paths(&label).1;
        println!();
        progress(&format!(
            "case {}: bigbrotr run synchronizer, sampled every {} s for at most {} s; its log: {}",
            case.name(),
            settings.sample.as_secs(),
            settings.limit.as_secs(),
            log.display()
        ));
        println!(
            "{:>7}  {:>10}  {:>10}  {:>6}  {:>12}  {:>7}  {:>8}",
            "seconds", "events", "sightings", "done", "sightings/s", "RSS MB", "peak MB"
        );
        let start = Instant::now();
        let mut running = Running {
            child: bigbrotr.spawn(&label, db.name(), &["run", "synchronizer"])?,
        };
        let pid = running.pid();
        let cpu_start = CpuSnapshot::take();
        let (samples, early_exit) =
            sample(settings, &mut running, pool, layout, goal, start).await?;
        let cpu_end = CpuSnapshot::take();
        let child_cpu = cpu::process_cpu(pid);
        let complete = samples.iter().position(|sample| sample.done);
        let metrics = if early_exit.is_none() {
            settle(&log, complete.is_some(), relays.len()).await
        } else {
            None
        };
        let peak = child::memory(pid)
            .map(|memory| memory.peak)
            .into_iter()
            .chain(samples.iter().filter_map(|sample| sample.peak))
            .max();
        let stop = stop(&mut running, early_exit).await?;

        let (final_events, final_sightings) = archived(pool).await?;
        let per_relay = sightings_per_relay(pool).await?;
        let quarantine = quarantine_rows(pool).await?;

        println!();
        println!(
            "BigBrotr synchronizer soak, case {}, through PgBouncer at {}: {} events on {} \
             in-process relays ({} sightings), {} cores",
            case.name(),
            server.address(),
            group(layout.events as f64),
            relays.len(),
            group(layout.sightings as f64),
            settings.workers,
        );
        if let Some(load) = load_average() {
            println!("load average (1, 5, 15 min) at the end: {load}; other work on the machine skews the figures");
        }
        print_rates(&samples, complete, layout, settings);
        print_memory(&samples, layout);
        if let (Some(start), Some(end), Some(last)) = (cpu_start, cpu_end, samples.last()) {
            let used = start.until(&end);
            let per = |d: Duration| d.as_secs_f64() * 1e6 / last.sightings.max(1) as f64;
            println!(
                "CPU time per sighting (µs), from /proc: synchronizer {:.1}, relays (this process) {:.1}, \
                 postgres {:.1}, pgbouncer {:.1}",
                child_cpu.map_or(f64::NAN, per),
                per(used.client),
                per(used.postgres),
                per(used.pgbouncer),
            );
        }
        print_stop(&stop);
        let mut passed = print_check(
            layout,
            relays,
            complete.is_some(),
            final_events,
            final_sightings,
            &per_relay,
            settings,
        );
        passed &= stop.status.success() && !stop.early && !stop.killed;
        if case == Case::Nip77Again && complete.is_some() {
            passed &= print_no_download(metrics.as_ref());
        }
        if !layout.giants.is_empty() {
            passed &= print_quarantine(layout, relays, &quarantine, pool).await?;
            if let Some(metrics) = &metrics {
                println!(
                    "synchronizer counters: {} events rejected (garbage, forged, oversized…), \
                     {} relay syncs ended",
                    group(metrics.total(REJECTED)),
                    group(metrics.total(RELAY_SYNCS)),
                );
            }
        }
        print_log(&log);
        Ok(CaseResult {
            case,
            events: layout.events,
            relays: relays.len(),
            quarantined: Some(quarantine.len() as u64),
            took: complete.map(|index| samples[index].at),
            metrics,
            peak,
            passed,
        })
    }
}

/// Waits for the cycle that reached the goal to end (every relay's sync
/// ended once more since), then reads the synchronizer's counters; `None`
/// when they could not be read.
async fn settle(log: &Path, complete: bool, relays: usize) -> Option<Metrics> {
    let deadline = Instant::now() + SETTLE_WAIT;
    let mut address = scrape::http_address(log);
    while address.is_none() && Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
        address = scrape::http_address(log);
    }
    let Some(address) = address else {
        println!("metrics: the synchronizer's log names no HTTP address");
        return None;
    };
    let mut latest = match scrape::scrape(address).await {
        Ok(metrics) => metrics,
        Err(error) => {
            println!("metrics: {error:#}");
            return None;
        }
    };
    if !complete {
        return Some(latest);
    }
    let before = latest.total(RELAY_SYNCS);
    while latest.total(RELAY_SYNCS) < before + relays as f64 {
        if Instant::now() >= deadline {
            println!(
                "metrics: the cycle did not end within {} s; its counters are missing",
                SETTLE_WAIT.as_secs()
            );
            break;
        }
        tokio::time::sleep(POLL).await;
        match scrape::scrape(address).await {
            Ok(metrics) => latest = metrics,
            Err(error) => {
                println!("metrics: {error:#}");
                return None;
            }
        }
    }
    Some(latest)
}

/// Whether the run downloaded no event: on relays whose events are all
/// archived with provenance, reconciliation must find nothing missing.
fn print_no_download(metrics: Option<&Metrics>) -> bool {
    let Some(metrics) = metrics else {
        println!("check: whether events were downloaded again is unknown (no metrics)");
        return false;
    };
    let (received, requests) = (metrics.total(RECEIVED), metrics.total(REQUESTS));
    if received == 0.0 {
        println!(
            "check: no event downloaded again ({} REQs, {} reconciliations)",
            group(requests),
            group(metrics.total(RECONCILIATIONS))
        );
        true
    } else {
        println!(
            "MISMATCH: {} events downloaded again ({} REQs) from relays whose events were all archived",
            group(received),
            group(requests)
        );
        false
    }
}

/// One line per case: the rate and what the archive cost in requests and
/// bytes, from the synchronizer's counters.
fn print_summary(results: &[CaseResult], settings: &Settings) {
    println!();
    println!(
        "Summary: {} events, {} cores; \"per event\": per distinct event the relays hold, all \
         archived by each run (nip77-again walks them again and archives none)",
        group(settings.events as f64),
        settings.workers
    );
    println!(
        "{:<12} {:>6} {:>8} {:>9} {:>10} {:>11} {:>14} {:>9} {:>9} {:>10} {:>8} {:>6}",
        "case",
        "relays",
        "seconds",
        "events/s",
        "REQs/1000",
        "bytes/event",
        "received/event",
        "reconcil.",
        "sightings",
        "quarantine",
        "peak MB",
        "check"
    );
    for result in results {
        let per_event = |name: &str| {
            result.metrics.as_ref().map_or_else(
                || "?".to_owned(),
                |metrics| {
                    let value = metrics.total(name) / result.events.max(1) as f64;
                    if name == REQUESTS {
                        format!("{:.1}", value * 1000.0)
                    } else if name == RECEIVED {
                        format!("{value:.3}")
                    } else {
                        group(value)
                    }
                },
            )
        };
        let count = |name: &str| {
            result
                .metrics
                .as_ref()
                .map_or_else(|| "?".to_owned(), |metrics| group(metrics.total(name)))
        };
        println!(
            "{:<12} {:>6} {:>8} {:>9} {:>10} {:>11} {:>14} {:>9} {:>9} {:>10} {:>8} {:>6}",
            result.case.name(),
            result.relays,
            result.took.map_or_else(
                || "-".to_owned(),
                |took| format!("{:.0}", took.as_secs_f64())
            ),
            result
                .took
                .map_or_else(|| "-".to_owned(), |took| group(rate(result.events, took))),
            per_event(REQUESTS),
            per_event(RECEIVED_BYTES),
            per_event(RECEIVED),
            count(RECONCILIATIONS),
            count(SIGHTINGS),
            result
                .quarantined
                .map_or_else(|| "?".to_owned(), |rows| group(rows as f64)),
            mb(result.peak),
            if result.passed { "ok" } else { "FAILED" },
        );
        if let Some(metrics) = &result.metrics {
            if result.case != Case::Nip77Again && metrics.total(STORED) as u64 != result.events {
                println!(
                    "  ({} events stored by the counters, {} expected)",
                    group(metrics.total(STORED)),
                    group(result.events as f64)
                );
            }
        }
    }
}

/// Samples the archive and the child's memory every `settings.sample`
/// until `goal` is reached, the time is up, or the child exits (returned
/// with its status).
async fn sample(
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

/// Bytes in MB with one decimal, `?` when unknown.
fn mb(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "?".to_owned(),
        |bytes| format!("{:.1}", bytes as f64 / 1e6),
    )
}

/// Items per second.
fn rate(items: u64, elapsed: Duration) -> f64 {
    items as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// Stops the child with `SIGTERM` (unless it has exited already) and waits
/// for it, killing it after [`STOP_WAIT`].
async fn stop(running: &mut Running, early_exit: Option<ExitStatus>) -> anyhow::Result<Stop> {
    if let Some(status) = early_exit {
        return Ok(Stop {
            status,
            early: true,
            took: Duration::ZERO,
            killed: false,
        });
    }
    let pid = running.pid().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .context("running `kill -TERM`")?;
    anyhow::ensure!(sent.success(), "`kill -TERM {pid}` failed ({sent})");
    let asked = Instant::now();
    loop {
        if let Some(status) = running
            .child
            .try_wait()
            .context("waiting for the synchronizer")?
        {
            return Ok(Stop {
                status,
                early: false,
                took: asked.elapsed(),
                killed: false,
            });
        }
        if asked.elapsed() >= STOP_WAIT {
            running.child.kill().context("killing the synchronizer")?;
            let status = running
                .child
                .wait()
                .context("waiting for the synchronizer")?;
            return Ok(Stop {
                status,
                early: false,
                took: asked.elapsed(),
                killed: true,
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The events and sightings archived, counted in one statement: from one
/// snapshot, so that no sighting is counted without its event.
async fn archived(pool: &ConnectionPool) -> anyhow::Result<(u64, u64)> {
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
async fn sightings_per_relay(pool: &ConnectionPool) -> anyhow::Result<Vec<(String, u64)>> {
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

/// Rates from the synchronizer's start, and in the steady part: from the
/// first sample past 10 % to the last one before completion.
fn print_rates(samples: &[Sample], complete: Option<usize>, layout: &Layout, settings: &Settings) {
    let Some(last) = samples.last() else {
        println!("no sample taken");
        return;
    };
    match complete {
        Some(index) => {
            let done = &samples[index];
            println!(
                "archived everything in {:.0} s (to the sample that saw it, every {} s)",
                done.at.as_secs_f64(),
                settings.sample.as_secs()
            );
        }
        None => println!(
            "INCOMPLETE: {} of {} sightings and {} of {} events archived when the run ended \
             after {:.0} s (BENCH_SOAK_SECS={})",
            group(last.sightings as f64),
            group(layout.sightings as f64),
            group(last.events as f64),
            group(layout.events as f64),
            last.at.as_secs_f64(),
            settings.limit.as_secs()
        ),
    }
    println!(
        "  from the synchronizer's start: {} events/s, {} sightings/s",
        group(rate(last.events, last.at)),
        group(rate(last.sightings, last.at))
    );
    let first = first_past(samples, layout.sightings, 0.10);
    let before_end = match complete {
        Some(index) if index > 0 => index - 1,
        Some(index) => index,
        None => samples.len() - 1,
    };
    if let Some(first) = first.filter(|first| *first < before_end) {
        let (from, to) = (&samples[first], &samples[before_end]);
        let elapsed = to.at - from.at;
        println!(
            "  steady part ({:.0} s to {:.0} s, {:.0} % to {:.0} %): {} events/s, {} sightings/s",
            from.at.as_secs_f64(),
            to.at.as_secs_f64(),
            100.0 * from.sightings as f64 / layout.sightings.max(1) as f64,
            100.0 * to.sightings as f64 / layout.sightings.max(1) as f64,
            group(rate(to.events - from.events.min(to.events), elapsed)),
            group(rate(
                to.sightings - from.sightings.min(to.sightings),
                elapsed
            )),
        );
    } else {
        println!("  steady part: too few samples (lower BENCH_SOAK_SAMPLE_SECS)");
    }
}

/// The index of the first sample with at least `share` of `total` sightings.
fn first_past(samples: &[Sample], total: u64, share: f64) -> Option<usize> {
    samples
        .iter()
        .position(|sample| sample.sightings as f64 >= share * total as f64)
}

/// The synchronizer's resident memory over the run, and its growth with
/// the sightings archived.
fn print_memory(samples: &[Sample], layout: &Layout) {
    let rss_at = |share: f64| {
        first_past(samples, layout.sightings, share)
            .and_then(|index| Some((samples[index], samples[index].rss?)))
    };
    let mut points = Vec::new();
    for (name, share) in [("10 %", 0.10), ("50 %", 0.50), ("100 %", 1.0)] {
        if let Some((sample, rss)) = rss_at(share) {
            points.push(format!(
                "{name} {} (at {:.0} s)",
                megabytes(rss),
                sample.at.as_secs_f64()
            ));
        }
    }
    let peak = samples.iter().filter_map(|sample| sample.peak).max();
    println!(
        "synchronizer RSS: {}; peak (VmHWM) {}",
        if points.is_empty() {
            "not sampled".to_owned()
        } else {
            points.join(", ")
        },
        peak.map_or_else(|| "?".to_owned(), megabytes)
    );
    let Some(growth) = growth_from(samples, layout, 0.10) else {
        println!("RSS growth: too few samples after 10 % archived");
        return;
    };
    println!(
        "RSS growth from 10 % to the end: {:+.2} MB per 100 000 sightings ({:+.1} MB over {} sightings; \
         least-squares slope over {} samples: {})",
        growth.per_100k / 1e6,
        growth.total / 1e6,
        group(growth.sightings),
        growth.samples,
        growth
            .slope
            .map_or_else(|| "?".to_owned(), |slope| format!("{:+.2} MB", slope / 1e6))
    );
    if let Some(second) = growth_from(samples, layout, 0.50) {
        println!(
            "  from 50 % to the end: {:+.2} MB per 100 000 sightings ({:+.1} MB)",
            second.per_100k / 1e6,
            second.total / 1e6
        );
    }
    if growth.samples < MIN_VERDICT_SAMPLES || growth.late_samples < 2 {
        println!(
            "verdict: none, {} samples after 10 % (at least {MIN_VERDICT_SAMPLES} needed, 2 in the \
             last quarter: more events or a shorter BENCH_SOAK_SAMPLE_SECS)",
            growth.samples
        );
    } else if growth
        .slope
        .map_or(growth.per_100k, |slope| slope.max(growth.per_100k))
        <= FLAT_GROWTH
    {
        println!(
            "verdict: flat, RSS does not grow with the events archived (at most {:.0} MB per \
             100 000 sightings from 10 % on)",
            FLAT_GROWTH / 1e6
        );
    } else if growth.peak_end <= growth.peak_before + NEW_HIGH_MARGIN {
        println!(
            "verdict: bounded, the growth is above {:.0} MB per 100 000 sightings but the peak \
             (VmHWM) rose no more than {:.0} MB over the last quarter of the sightings after 10 % \
             ({} to {}): the memory levelled off rather than growing with the events archived",
            FLAT_GROWTH / 1e6,
            NEW_HIGH_MARGIN / 1e6,
            megabytes(growth.peak_before as u64),
            megabytes(growth.peak_end as u64),
        );
    } else {
        println!(
            "verdict: RSS GROWS with the events archived: more than {:.0} MB per 100 000 sightings, \
             and the peak (VmHWM) still rose over the last quarter of the sightings after 10 % \
             ({} to {})",
            FLAT_GROWTH / 1e6,
            megabytes(growth.peak_before as u64),
            megabytes(growth.peak_end as u64),
        );
    }
}

/// How the synchronizer's RSS grew from the first sample past `share` of
/// the sightings to the last sample.
#[derive(Debug, Clone, Copy)]
struct Growth {
    /// Bytes per 100 000 sightings, between the two samples.
    per_100k: f64,
    /// Bytes per 100 000 sightings, least-squares slope over every sample
    /// between them.
    slope: Option<f64>,
    /// Bytes in all.
    total: f64,
    /// Sightings archived between the two samples.
    sightings: f64,
    /// Samples counted.
    samples: usize,
    /// The peak RSS (`VmHWM`) before the last quarter of the sightings
    /// counted, and at the end; samples in the last quarter.
    peak_before: f64,
    peak_end: f64,
    late_samples: usize,
}

/// The growth of the RSS from the first sample past `share` of the
/// sightings to the last sample; `None` without two samples apart.
fn growth_from(samples: &[Sample], layout: &Layout, share: f64) -> Option<Growth> {
    let from = first_past(samples, layout.sightings, share)?;
    let tail: Vec<(f64, f64)> = samples[from..]
        .iter()
        .filter_map(|sample| Some((sample.sightings as f64, sample.rss? as f64)))
        .collect();
    let (&(first_x, first_y), &(last_x, last_y)) = (tail.first()?, tail.last()?);
    let sightings = last_x - first_x;
    if sightings < 1.0 {
        return None;
    }
    // The peak (VmHWM) only rises: where it stood before the last quarter
    // of the sightings counted, and at the end.
    let late_from = first_x + 0.75 * sightings;
    let peak_before = samples[from..]
        .iter()
        .filter(|sample| (sample.sightings as f64) < late_from)
        .filter_map(|sample| sample.peak)
        .max()?;
    let peak_end = samples[from..]
        .iter()
        .filter_map(|sample| sample.peak)
        .max()?;
    Some(Growth {
        per_100k: (last_y - first_y) / sightings * 100_000.0,
        slope: least_squares_slope(&tail).map(|slope| slope * 100_000.0),
        total: last_y - first_y,
        sightings,
        samples: tail.len(),
        peak_before: peak_before as f64,
        peak_end: peak_end as f64,
        late_samples: tail.iter().filter(|(x, _)| *x >= late_from).count(),
    })
}

/// The slope of the least-squares line through `points`.
fn least_squares_slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 3 {
        return None;
    }
    let mean_x = points.iter().map(|(x, _)| x).sum::<f64>() / n;
    let mean_y = points.iter().map(|(_, y)| y).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, y) in points {
        sxy += (x - mean_x) * (y - mean_y);
        sxx += (x - mean_x) * (x - mean_x);
    }
    (sxx > 0.0).then(|| sxy / sxx)
}

/// How the synchronizer ended.
fn print_stop(stop: &Stop) {
    let how = if stop.early {
        "exited before the end of the run".to_owned()
    } else if stop.killed {
        format!(
            "did NOT exit within {} s of SIGTERM and was killed",
            STOP_WAIT.as_secs()
        )
    } else {
        format!("exited {:.1} s after SIGTERM", stop.took.as_secs_f64())
    };
    let code = stop.status.code().map_or_else(
        || stop.status.to_string(),
        |code| format!("exit status {code}"),
    );
    let verdict = if stop.status.success() && !stop.early && !stop.killed {
        ""
    } else {
        " (UNEXPECTED: 0 after SIGTERM expected)"
    };
    println!("synchronizer: {how}, {code}{verdict}");
}

/// Whether the archive holds what the relays hold; returns whether it
/// does.
fn print_check(
    layout: &Layout,
    relays: &[BenchRelay],
    complete: bool,
    events: u64,
    sightings: u64,
    per_relay: &[(String, u64)],
    settings: &Settings,
) -> bool {
    if !complete {
        println!(
            "check: not made, the run ended before everything was archived \
             ({} of {} events, {} of {} sightings; raise BENCH_SOAK_SECS or lower BENCH_SOAK_EVENTS)",
            group(events as f64),
            group(layout.events as f64),
            group(sightings as f64),
            group(layout.sightings as f64),
        );
        return false;
    }
    let mut problems = Vec::new();
    if events != layout.events {
        problems.push(format!(
            "{} events archived, {} expected",
            group(events as f64),
            group(layout.events as f64)
        ));
    }
    if sightings != layout.sightings {
        problems.push(format!(
            "{} sightings archived, {} expected",
            group(sightings as f64),
            group(layout.sightings as f64)
        ));
    }
    for (relay, range) in relays.iter().zip(&layout.ranges) {
        let found = per_relay
            .iter()
            .find(|(url, _)| url == relay.url())
            .map_or(0, |(_, count)| *count);
        if found != range.len() as u64 {
            problems.push(format!(
                "{} holds {} events, {} archived with provenance to it",
                relay.url(),
                group(range.len() as f64),
                group(found as f64)
            ));
        }
    }
    let extra: Vec<&str> = per_relay
        .iter()
        .filter(|(url, count)| *count > 0 && relays.iter().all(|relay| relay.url() != url))
        .map(|(url, _)| url.as_str())
        .collect();
    if !extra.is_empty() {
        problems.push(format!("sightings of unknown relays: {}", extra.join(", ")));
    }
    let passed = problems.is_empty();
    if passed {
        println!(
            "check: {} events and {} sightings archived, as expected; every relay's provenance complete",
            group(events as f64),
            group(sightings as f64)
        );
    } else {
        for problem in problems {
            println!("MISMATCH: {problem}");
        }
    }
    if settings.keep {
        println!("(BENCH_KEEP_DB=1: the database is kept for inspection)");
    }
    passed
}

/// One row of `quarantine`.
#[derive(Debug)]
struct Quarantined {
    url: String,
    created_at: Option<i64>,
    /// In hex.
    event_id: Option<String>,
    size: Option<i64>,
    reason: String,
}

/// Every row of `quarantine`, with its relay's URL.
async fn quarantine_rows(pool: &ConnectionPool) -> anyhow::Result<Vec<Quarantined>> {
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

/// Whether every relay's giant events were recorded in `quarantine` (by
/// their second or their id) and none was archived; returns whether so.
async fn print_quarantine(
    layout: &Layout,
    relays: &[BenchRelay],
    rows: &[Quarantined],
    pool: &ConnectionPool,
) -> anyhow::Result<bool> {
    let expected = layout.giants.len() * relays.len();
    let mut problems = Vec::new();
    let mut matched = vec![false; rows.len()];
    for relay in relays {
        for giant in &layout.giants {
            let second = i64::try_from(giant.created_at.as_secs()).unwrap_or(i64::MAX);
            let id = giant.id.to_hex();
            let mut found = false;
            for (row, matched) in rows.iter().zip(matched.iter_mut()) {
                if row.url == relay.url()
                    && (row.created_at == Some(second) || row.event_id.as_deref() == Some(&id))
                {
                    *matched = true;
                    found = true;
                }
            }
            if !found {
                problems.push(format!(
                    "{} served the giant event of second {second}: not in quarantine",
                    relay.url()
                ));
            }
        }
    }
    let ids: Vec<String> = layout
        .giants
        .iter()
        .map(|giant| format!("decode('{}', 'hex')", giant.id.to_hex()))
        .collect();
    let row = pool
        .fetch_one(
            &format!(
                "SELECT count(*) FROM events WHERE id IN ({})",
                ids.join(", ")
            ),
            &[],
        )
        .await
        .context("looking for the giant events in the archive")?;
    let stored: i64 = row.get(0);
    if stored > 0 {
        problems.push(format!("{stored} giant events archived"));
    }
    let mut reasons: Vec<String> = Vec::new();
    for row in rows {
        let reason = row.reason.split(':').next().unwrap_or_default().to_owned();
        if !reasons.contains(&reason) {
            reasons.push(reason);
        }
    }
    let with_id = rows.iter().filter(|row| row.event_id.is_some()).count();
    let with_size = rows.iter().filter(|row| row.size.is_some()).count();
    println!(
        "quarantine: {} rows ({} giant events × {} relays = {expected}); reasons: {}; \
         {with_id} with an event id, {with_size} with a size",
        rows.len(),
        layout.giants.len(),
        relays.len(),
        if reasons.is_empty() {
            "none".to_owned()
        } else {
            reasons.join(", ")
        },
    );
    if let Some(row) = rows.first() {
        println!(
            "  e.g. {} second {} id {} size {}: {}",
            row.url,
            row.created_at
                .map_or_else(|| "?".to_owned(), |at| at.to_string()),
            row.event_id.as_deref().unwrap_or("?"),
            row.size
                .map_or_else(|| "?".to_owned(), |size| size.to_string()),
            row.reason.chars().take(200).collect::<String>()
        );
    }
    let extra = matched.iter().filter(|matched| !**matched).count();
    if extra > 0 {
        println!("  {extra} rows name no giant event of their relay");
    }
    let passed = problems.is_empty();
    if passed {
        println!("check: every giant event recorded in quarantine for every relay, none archived");
    } else {
        for problem in problems {
            println!("MISMATCH: {problem}");
        }
    }
    Ok(passed)
}

/// Counts the warnings and errors of the synchronizer's log and shows the
/// first few.
fn print_log(path: &Path) {
    let Ok(text) = std::fs::read_to_string(path) else {
        println!("log: {} could not be read", path.display());
        return;
    };
    let level = |line: &str, name: &str| line.split_whitespace().take(3).any(|word| word == name);
    let warnings: Vec<&str> = text.lines().filter(|line| level(line, "WARN")).collect();
    let errors: Vec<&str> = text.lines().filter(|line| level(line, "ERROR")).collect();
    println!(
        "log: {} lines, {} warnings, {} errors ({})",
        text.lines().count(),
        warnings.len(),
        errors.len(),
        path.display()
    );
    for line in errors.iter().chain(&warnings).take(5) {
        println!("  {}", line.chars().take(300).collect::<String>());
    }
}

/// The names of the environment's overrides of the sections the soak run
/// sets itself.
fn own_overrides() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| {
            OWN_SECTIONS.iter().any(|section| {
                name.strip_prefix("BIGBROTR_")
                    .and_then(|rest| rest.strip_prefix(section))
                    .is_some_and(|rest| rest.starts_with("__"))
            })
        })
        .collect()
}

/// The event file of `count` events in `dir`, signed now on `workers`
/// threads unless an earlier run left it. Returns whether it was generated.
fn ensure_events(dir: &Path, count: usize, workers: usize) -> anyhow::Result<(PathBuf, bool)> {
    let path = dir.join(format!("soak-{count}.jsonl"));
    if path.is_file() {
        return Ok((path, false));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Written under a temporary name and renamed at the end: an interrupted
    // run leaves nothing a later run would take for a whole file.
    let partial = path.with_extension("jsonl.partial");
    let mut writer = File::create(&partial)
        .map(|file| BufWriter::with_capacity(1 << 20, file))
        .with_context(|| format!("creating {}", partial.display()))?;
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
            writer
                .write_all(line.as_bytes())
                .and_then(|()| writer.write_all(b"\n"))
                .with_context(|| format!("writing {}", partial.display()))?;
        }
        done += round;
    }
    writer
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)
        .and_then(|file| file.sync_all())
        .with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok((path, true))
}

/// One store per range of `layout`, holding those of `events` and the
/// layout's giants.
fn make_stores(events: &[Arc<Event>], layout: &Layout) -> anyhow::Result<Vec<Arc<WindowStore>>> {
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
fn sign_giants(events: &[Arc<Event>]) -> anyhow::Result<Vec<Arc<RawEvent>>> {
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
async fn start_relays(
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
fn read_events(path: &Path, workers: usize) -> anyhow::Result<Vec<Arc<Event>>> {
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

/// Writes the root folder of the soak run: a copy of the repository's
/// implementation with the synchronizer syncing `relays` from the start of
/// time to now, a cycle every second, its HTTP endpoint on a free port,
/// its log at `info` on standard error, and the egress policy letting it
/// reach the relays on loopback.
fn write_root(repo_root: &Path, root: &Path, relays: &[String]) -> anyhow::Result<()> {
    if root.exists() {
        std::fs::remove_dir_all(root).with_context(|| format!("removing {}", root.display()))?;
    }
    let source = repo_root.join("implementations").join(IMPLEMENTATION);
    let target = root.join("implementations").join(IMPLEMENTATION);
    copy_dir(&source, &target)?;
    let config = target.join("config");
    let relays = Value::Sequence(relays.iter().map(|url| Value::from(url.as_str())).collect());
    patch_yaml(
        &config.join("services").join("synchronizer.yaml"),
        &[
            ("service.enabled", Value::from(true)),
            ("loop.interval", Value::from(LOOP_INTERVAL)),
            ("loop.max_iterations", Value::from(0)),
            ("synchronizer.relays", relays),
            ("synchronizer.start_time", Value::from(0)),
            ("synchronizer.end_lag", Value::from(0)),
        ],
    )?;
    patch_yaml(
        &config.join("core").join("runtime.yaml"),
        &[("runtime.http.listen", Value::from(HTTP_LISTEN))],
    )?;
    let egress = config.join("core").join("egress.yaml");
    if egress.is_file() {
        patch_yaml(
            &egress,
            &[(
                "egress.allow",
                Value::Sequence(vec![Value::from(RELAY_NETWORK)]),
            )],
        )?;
    }
    let mut console = Mapping::new();
    for (key, value) in [
        ("type", "console"),
        ("level", "info"),
        ("format", "standard"),
        ("stream", "stderr"),
    ] {
        console.insert(Value::from(key), Value::from(value));
    }
    patch_yaml(
        &config.join("core").join("logging.yaml"),
        &[(
            "logging.outputs",
            Value::Sequence(vec![Value::Mapping(console)]),
        )],
    )
}

/// Copies the folder `from` to `to`, recursively.
fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let kind = entry
            .file_type()
            .with_context(|| format!("reading {}", entry.path().display()))?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).with_context(|| {
                format!("copying {} to {}", entry.path().display(), target.display())
            })?;
        }
    }
    Ok(())
}

/// Sets the keys at the dotted paths of `changes` in the YAML file at
/// `path`, keeping every other key as it is.
fn patch_yaml(path: &Path, changes: &[(&str, Value)]) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut tree: Value =
        serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    for (key, value) in changes {
        set_path(&mut tree, key, value.clone())
            .with_context(|| format!("setting `{key}` in {}", path.display()))?;
    }
    let text = serde_yaml::to_string(&tree)
        .with_context(|| format!("writing the YAML of {}", path.display()))?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Sets the value at a dotted `path` of mappings, creating the missing ones.
fn set_path(tree: &mut Value, path: &str, value: Value) -> anyhow::Result<()> {
    let mut node = tree;
    let mut keys = path.split('.').peekable();
    while let Some(key) = keys.next() {
        if node.is_null() {
            *node = Value::Mapping(Mapping::new());
        }
        let map = node
            .as_mapping_mut()
            .with_context(|| format!("`{key}` is not under a mapping"))?;
        if keys.peek().is_none() {
            map.insert(Value::from(key), value);
            return Ok(());
        }
        if !map.contains_key(key) {
            map.insert(Value::from(key), Value::Mapping(Mapping::new()));
        }
        node = map
            .get_mut(key)
            .with_context(|| format!("`{key}` vanished"))?;
    }
    Ok(())
}
