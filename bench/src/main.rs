#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod child;
mod corpus;
mod cpu;
mod db;
mod measure;
mod relay;
mod scrape;
mod soak;
mod store;

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bigbrotr_config::Implementation;

use crate::child::{Bigbrotr, Run};
use crate::corpus::CorpusFiles;
use crate::cpu::{CpuSnapshot, CpuUse};
use crate::db::Server;
use crate::measure::{FIRST_RELAY, SECOND_RELAY};

/// The implementation measured.
const IMPLEMENTATION: &str = "bigbrotr";
/// Targets the figures are reported against.
const TARGET_VALIDATED_RATE: f64 = 25_000.0;
const TARGET_SHARE_OF_COPY: f64 = 0.70;
const TARGET_PEAK_RSS: u64 = 200_000_000;

/// What a run measures, from the environment.
#[derive(Debug)]
struct Settings {
    events: usize,
    large: Option<usize>,
    tasks: usize,
    batch: Option<usize>,
    copy_rows: usize,
    workers: usize,
    dir: PathBuf,
    keep: bool,
    binary: PathBuf,
    root: PathBuf,
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let Locations { dir, binary, root } = Locations::from_env()?;
        Ok(Self {
            events: env_count("BENCH_EVENTS", 100_000)?,
            large: env_flag("BENCH_LARGE")
                .then(|| env_count("BENCH_LARGE_EVENTS", 1_000_000))
                .transpose()?,
            tasks: env_count("BENCH_TASKS", 3)?,
            batch: std::env::var_os("BENCH_BATCH")
                .is_some()
                .then(|| env_count("BENCH_BATCH", 1))
                .transpose()?,
            copy_rows: env_count("BENCH_COPY_ROWS", 10_000)?,
            workers: workers(),
            dir,
            keep: env_flag("BENCH_KEEP_DB"),
            binary,
            root,
        })
    }
}

/// Where the benchmarks' files, the `bigbrotr` command and the repository
/// are.
#[derive(Debug, Clone)]
struct Locations {
    /// Where generated events and the command's output go (`BENCH_DIR`).
    dir: PathBuf,
    /// The `bigbrotr` executable (`BIGBROTR_BIN`).
    binary: PathBuf,
    /// The repository: the folder holding `implementations/`.
    root: PathBuf,
}

impl Locations {
    fn from_env() -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating the benchmark's executable")?;
        // The executable sits in `<target>/release/`; the corpus goes to
        // `<target>/bench/`, the `bigbrotr` command is its neighbour.
        let exe_dir = exe.parent().unwrap_or(Path::new("."));
        let dir = std::env::var_os("BENCH_DIR").map_or_else(
            || exe_dir.parent().unwrap_or(exe_dir).join("bench"),
            PathBuf::from,
        );
        let binary = std::env::var_os("BIGBROTR_BIN").map_or_else(
            || exe_dir.join(format!("bigbrotr{}", std::env::consts::EXE_SUFFIX)),
            PathBuf::from,
        );
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest_dir
            .join("..")
            .canonicalize()
            .unwrap_or_else(|_| manifest_dir.join(".."));
        Ok(Self { dir, binary, root })
    }
}

/// The cores available to this process.
fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// A positive count from the environment variable `name`, else `default`.
fn env_count(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(text) => {
            let value: usize = text
                .trim()
                .replace('_', "")
                .parse()
                .with_context(|| format!("{name}={text} is not a count"))?;
            anyhow::ensure!(value > 0, "{name} must be at least 1");
            Ok(value)
        }
        Err(_) => Ok(default),
    }
}

/// Whether the environment variable `name` is set to anything but empty or `0`.
fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|value| !value.is_empty() && value != "0")
}

/// One line of the table.
#[derive(Debug)]
struct Figure {
    what: String,
    /// Items handled: events, or (event, relay) sightings.
    items: usize,
    /// Distinct events archived (or checked).
    events: usize,
    elapsed: Duration,
    peak_rss: Option<u64>,
    /// CPU time by party, where `/proc` could be read.
    cpu: Option<CpuUse>,
}

impl Figure {
    fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn main() -> anyhow::Result<()> {
    match std::env::args().nth(1).as_deref() {
        None => ingest(),
        Some("soak") => soak::main(),
        Some(other) => anyhow::bail!(
            "unknown benchmark `{other}`: run without an argument for the ingest benchmark, \
             or with `soak` for the synchronizer's soak run"
        ),
    }
}

/// The ingest benchmark.
fn ingest() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    anyhow::ensure!(
        settings.binary.is_file(),
        "{} not found: build it first (cargo build --release -p bigbrotr), or set BIGBROTR_BIN",
        settings.binary.display()
    );
    let implementation = Implementation::open(&settings.root, IMPLEMENTATION)
        .with_context(|| format!("opening implementation `{IMPLEMENTATION}`"))?;
    let server = Server::of(implementation)?;
    let batch = settings
        .batch
        .unwrap_or(server.brotr_config().batch_size.max(1));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let bigbrotr = Bigbrotr {
        binary: settings.binary.clone(),
        root: settings.root.clone(),
        implementation: IMPLEMENTATION.to_owned(),
        log_dir: settings.dir.clone(),
        env_remove: Vec::new(),
    };

    progress(&format!(
        "corpus of {} events in {}",
        settings.events,
        settings.dir.display()
    ));
    let (files, generated) =
        corpus::ensure(&settings.dir, settings.events, true, settings.workers)?;
    if generated {
        progress("  signed and written");
    } else {
        progress("  reused from an earlier run");
    }
    let events = Arc::new(corpus::load(&files.all)?);
    anyhow::ensure!(
        events.len() == settings.events,
        "{} holds {} events, not {}",
        files.all.display(),
        events.len(),
        settings.events
    );
    let sightings = files.count + files.second_relay_count();
    let mut figures = Vec::new();

    progress("validate_event on every core");
    let cpu_start = CpuSnapshot::take();
    let elapsed = measure::validate(&events, settings.workers)?;
    figures.push(Figure {
        what: format!("validate_event, {} threads", settings.workers),
        items: events.len(),
        events: events.len(),
        elapsed,
        peak_rss: None,
        cpu: measure::cpu_used(cpu_start),
    });

    progress("binary COPY into an unindexed table");
    let (elapsed, cpu) = runtime.block_on(measure::copy(
        &server,
        Arc::clone(&events),
        settings.tasks,
        settings.copy_rows,
        settings.keep,
    ))?;
    figures.push(Figure {
        what: format!(
            "binary COPY, unindexed, {} rows/transaction",
            group(settings.copy_rows as f64)
        ),
        items: events.len(),
        events: events.len(),
        elapsed,
        peak_rss: None,
        cpu,
    });

    progress("binary COPY into the implementation's indexed tables");
    let (elapsed, cpu) = runtime.block_on(measure::copy_into_schema(
        &server,
        Arc::clone(&events),
        settings.tasks,
        batch,
        settings.keep,
    ))?;
    figures.push(Figure {
        what: "binary COPY into events + events_relays".to_owned(),
        items: sightings,
        events: events.len(),
        elapsed,
        peak_rss: None,
        cpu,
    });

    for validation in [false, true] {
        let on_off = if validation { "on" } else { "off" };
        progress(&format!("insert_event_batch, validation {on_off}"));
        let inserted = runtime.block_on(measure::insert(
            &server,
            &events,
            validation,
            settings.tasks,
            batch,
            settings.keep,
        ))?;
        anyhow::ensure!(
            inserted.report.stored == events.len() as u64 && inserted.report.rejected.is_empty(),
            "insert_event_batch reported {:?}",
            inserted.report
        );
        figures.push(Figure {
            what: format!("insert_event_batch, validation {on_off}"),
            items: inserted.items,
            events: events.len(),
            elapsed: inserted.elapsed,
            peak_rss: None,
            cpu: inserted.cpu,
        });
    }

    progress("bigbrotr import: first relay, then second relay");
    let (elapsed, peak_rss, cpu) = import(
        &runtime,
        &server,
        &bigbrotr,
        &files,
        "import",
        settings.keep,
    )?;
    figures.push(Figure {
        what: "bigbrotr import (2 runs: both relays)".to_owned(),
        items: sightings,
        events: events.len(),
        elapsed,
        peak_rss,
        cpu,
    });
    drop(events);

    let mut large_rss = None;
    if let Some(count) = settings.large {
        progress(&format!("corpus of {count} events"));
        let (large, generated) = corpus::ensure(&settings.dir, count, false, settings.workers)?;
        progress(if generated {
            "  signed and written"
        } else {
            "  reused from an earlier run"
        });
        progress(&format!("bigbrotr import of {count} events"));
        let (elapsed, peak_rss, cpu) = import(
            &runtime,
            &server,
            &bigbrotr,
            &large,
            "import_large",
            settings.keep,
        )?;
        large_rss = peak_rss;
        figures.push(Figure {
            what: format!("bigbrotr import, {} events", group(count as f64)),
            items: count,
            events: count,
            elapsed,
            peak_rss,
            cpu,
        });
    }

    println!();
    println!(
        "BigBrotr ingest, through PgBouncer at {}: {} events, {} cores, {} concurrent batches of {} items",
        server.address(),
        group(settings.events as f64),
        settings.workers,
        settings.tasks,
        group(batch as f64),
    );
    if let Some(load) = load_average() {
        println!("load average (1, 5, 15 min) at the end: {load}; other work on the machine skews the figures");
    }
    print_table(&figures);
    print_cpu(&figures, settings.workers);
    print_targets(&figures, large_rss, settings.large.is_some());
    Ok(())
}

/// Imports a corpus with `bigbrotr import` into a fresh database (the first
/// relay, then the second when the corpus has one) and returns the time
/// both took and the larger peak RSS.
fn import(
    runtime: &tokio::runtime::Runtime,
    server: &Server,
    bigbrotr: &Bigbrotr,
    files: &CorpusFiles,
    label: &str,
    keep: bool,
) -> anyhow::Result<(Duration, Option<u64>, Option<CpuUse>)> {
    let db = runtime.block_on(server.create(label))?;
    bigbrotr.run(&format!("{label}-db-init"), db.name(), &["db", "init"])?;
    let mut runs: Vec<Run> = Vec::new();
    let cpu_start = CpuSnapshot::take();
    let inputs = [
        Some((&files.all, FIRST_RELAY)),
        files.second_relay.as_ref().map(|path| (path, SECOND_RELAY)),
    ];
    for (number, (path, relay)) in (1..).zip(inputs.into_iter().flatten()) {
        let path = path
            .to_str()
            .with_context(|| format!("{} is not UTF-8", path.display()))?;
        let run = bigbrotr.run(
            &format!("{label}-{number}"),
            db.name(),
            &["import", path, "--relay", relay],
        )?;
        progress(&format!("  {}", run.stdout.trim()));
        runs.push(run);
    }
    let cpu = measure::cpu_used(cpu_start);
    runtime.block_on(async {
        let pool = server.pool(&db).await?;
        measure::check_archive(&pool, files.count, files.second_relay_count()).await?;
        pool.disconnect(Duration::from_secs(5)).await;
        db.finish(keep).await
    })?;
    Ok((
        runs.iter().map(|run| run.elapsed).sum(),
        runs.iter().filter_map(|run| run.peak_rss).max(),
        cpu,
    ))
}

fn print_table(figures: &[Figure]) {
    let copy_rate = figures
        .iter()
        .find(|figure| figure.what.starts_with("binary COPY"))
        .map(Figure::rate);
    let width = figures
        .iter()
        .map(|figure| figure.what.chars().count())
        .max()
        .unwrap_or(0);
    println!(
        "{:<width$}  {:>9}  {:>8}  {:>9}  {:>7}  {:>8}",
        "what", "items", "seconds", "events/s", "vs COPY", "peak RSS"
    );
    for figure in figures {
        let share = copy_rate.map_or_else(String::new, |copy| {
            format!("{:.0} %", 100.0 * figure.rate() / copy)
        });
        let rss = figure.peak_rss.map_or_else(String::new, megabytes);
        println!(
            "{:<width$}  {:>9}  {:>8.2}  {:>9}  {:>7}  {:>8}",
            figure.what,
            group(figure.items as f64),
            figure.elapsed.as_secs_f64(),
            group(figure.rate()),
            share,
            rss
        );
    }
    println!(
        "events/s counts distinct events; the insert and import lines also store \
         every other event's sighting on a second relay (items = sightings)."
    );
}

/// Where the CPU time went, per distinct event, and the rate the machine
/// could reach if nothing else ran on it and every core were busy: the
/// figure that does not depend on what else the machine was doing.
fn print_cpu(figures: &[Figure], workers: usize) {
    if figures.iter().all(|figure| figure.cpu.is_none()) {
        return;
    }
    let width = figures
        .iter()
        .map(|figure| figure.what.chars().count())
        .max()
        .unwrap_or(0);
    println!();
    println!(
        "CPU time per event (µs), from /proc; ceiling = events/s with all {workers} cores busy on this work alone"
    );
    println!(
        "{:<width$}  {:>7}  {:>8}  {:>9}  {:>7}  {:>9}",
        "what", "client", "postgres", "pgbouncer", "total", "ceiling"
    );
    for figure in figures {
        let Some(cpu) = figure.cpu else { continue };
        let per_event = |d: Duration| d.as_secs_f64() * 1e6 / figure.events.max(1) as f64;
        let total = per_event(cpu.total());
        let ceiling = if total > 0.0 {
            group(workers as f64 * 1e6 / total)
        } else {
            String::new()
        };
        println!(
            "{:<width$}  {:>7.1}  {:>8.1}  {:>9.1}  {:>7.1}  {:>9}",
            figure.what,
            per_event(cpu.client),
            per_event(cpu.postgres),
            per_event(cpu.pgbouncer),
            total,
            ceiling
        );
    }
}

fn print_targets(figures: &[Figure], large_rss: Option<u64>, large: bool) {
    let rate_of = |prefix: &str| {
        figures
            .iter()
            .find(|figure| figure.what.starts_with(prefix))
            .map(Figure::rate)
    };
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    println!();
    println!("targets (reported, not enforced):");
    for (what, prefix) in [
        ("insert_event_batch", "insert_event_batch, validation on"),
        ("bigbrotr import", "bigbrotr import (2 runs"),
    ] {
        if let Some(rate) = rate_of(prefix) {
            println!(
                "  >= {} events/s with full validation, {what}: {} ({})",
                group(TARGET_VALIDATED_RATE),
                group(rate),
                verdict(rate >= TARGET_VALIDATED_RATE)
            );
        }
    }
    if let (Some(off), Some(copy)) = (
        rate_of("insert_event_batch, validation off"),
        rate_of("binary COPY"),
    ) {
        let share = off / copy;
        println!(
            "  >= {:.0} % of the COPY rate without validation, insert_event_batch: {:.0} % ({})",
            100.0 * TARGET_SHARE_OF_COPY,
            100.0 * share,
            verdict(share >= TARGET_SHARE_OF_COPY)
        );
        if let Some(schema) = rate_of("binary COPY into events") {
            println!(
                "    (against a COPY into the same indexed tables, which the schema itself costs: {:.0} %)",
                100.0 * off / schema
            );
        }
    }
    match (large, large_rss) {
        (true, Some(rss)) => println!(
            "  peak RSS < {} for the large import: {} ({})",
            megabytes(TARGET_PEAK_RSS),
            megabytes(rss),
            verdict(rss < TARGET_PEAK_RSS)
        ),
        (true, None) => println!("  peak RSS of the large import: could not be read"),
        (false, _) => println!("  peak RSS for 1M events: not measured (set BENCH_LARGE=1)"),
    }
}

/// `bytes` in MB (10^6 bytes).
fn megabytes(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / 1e6)
}

/// A whole number with thousands separated by spaces.
fn group(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(' ');
        }
        out.push(digit);
    }
    out
}

/// The first three fields of `/proc/loadavg`, where there is one.
fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn progress(message: &str) {
    eprintln!("bench: {message}");
}
