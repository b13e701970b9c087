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
//!
//! The parts: `settings` (what a run does, from the command line), `case`
//! (how the relays behave and what ends a run), `fixtures` (the events, the
//! relays' stores and the relays), `relay` (a relay's WebSocket server and
//! how it answers), `root` (the root folder the synchronizer
//! runs with), `synchronizer` (its process and its counters), `sampling`
//! (readings of the archive and of its memory), `statistics` (rates and the
//! growth of the memory), `print` and `check` (what a case reports).

mod case;
mod check;
mod fixtures;
mod print;
mod relay;
mod root;
mod sampling;
mod settings;
mod statistics;
mod synchronizer;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bigbrotr_config::Implementation;
use bigbrotr_pool::ConnectionPool;
use nostr::Timestamp;

use self::case::{Case, CaseResult, Goal};
use self::check::{print_check, print_no_download, print_quarantine};
use self::fixtures::{
    ensure_events, make_stores, read_events, sign_giants, start_relays, Layout, GIANT_CONTENT,
};
use self::print::{print_log, print_memory, print_rates, print_stop, print_summary};
use self::relay::BenchRelay;
use self::root::{own_overrides, write_root};
use self::sampling::{archived, quarantine_rows, sample, sightings_per_relay};
pub(crate) use self::settings::Args;
use self::settings::Settings;
use self::synchronizer::{settle, REJECTED, RELAY_SYNCS, STOP_WAIT};
use crate::child::{self, stop, Bigbrotr, Running};
use crate::cpu::{self, CpuSnapshot};
use crate::db::{BenchDb, Server};
use crate::output::{group, load_average, megabytes, progress};
use crate::store::WindowStore;
use crate::IMPLEMENTATION;

/// How often the child is checked for an early exit between samples.
const POLL: Duration = Duration::from_millis(200);
/// Name of the child's output files in the bench folder, followed by the
/// case's name.
const LABEL: &str = "soak-synchronizer";

/// Runs the soak benchmark.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let settings = Settings::new(&args)?;
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
            env: Vec::new(),
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
        let stop = stop(&mut running, early_exit, STOP_WAIT).await?;

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
