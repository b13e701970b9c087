//! The ingest benchmark: how fast events reach the archive (validation,
//! binary `COPY`, `insert_event_batch`, `bigbrotr import`) and how much
//! memory `bigbrotr import` needs, each on a fresh database through
//! PgBouncer.

mod print;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bigbrotr_config::Implementation;
use clap::ArgAction;

use self::print::{print_cpu, print_table, print_targets};
use crate::child::{Bigbrotr, Run};
use crate::cli::{count, flag, Locations, Shared};
use crate::corpus::{self, CorpusFiles};
use crate::cpu::{CpuSnapshot, CpuUse};
use crate::db::Server;
use crate::measure::{self, FIRST_RELAY, SECOND_RELAY};
use crate::output::{group, load_average, progress};
use crate::{workers, IMPLEMENTATION};

/// The settings of the ingest benchmark.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Events in the corpus
    #[arg(
        long,
        env = "BENCH_EVENTS",
        value_name = "COUNT",
        default_value_t = 100_000,
        value_parser = count
    )]
    events: usize,
    /// Measure the large import too (set to anything but empty or `0`)
    #[arg(
        long,
        env = "BENCH_LARGE",
        action = ArgAction::SetTrue,
        value_parser = flag,
        default_value = "0"
    )]
    large: bool,
    /// Events of the large import
    #[arg(
        long,
        env = "BENCH_LARGE_EVENTS",
        value_name = "COUNT",
        default_value_t = 1_000_000,
        value_parser = count
    )]
    large_events: usize,
    /// Batches written at once (as `bigbrotr import` does)
    #[arg(
        long,
        env = "BENCH_TASKS",
        value_name = "COUNT",
        default_value_t = 3,
        value_parser = count
    )]
    tasks: usize,
    /// Items per `insert_event_batch` call [default: `brotr.batch_size`]
    #[arg(long, env = "BENCH_BATCH", value_name = "COUNT", value_parser = count)]
    batch: Option<usize>,
    /// Rows per `COPY` transaction
    #[arg(
        long,
        env = "BENCH_COPY_ROWS",
        value_name = "COUNT",
        default_value_t = 10_000,
        value_parser = count
    )]
    copy_rows: usize,
    /// The settings every benchmark takes.
    #[command(flatten)]
    shared: Shared,
}

/// What a run measures, from its settings.
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
    fn new(args: &Args) -> anyhow::Result<Self> {
        let Locations { dir, binary, root } = Locations::new(&args.shared)?;
        Ok(Self {
            events: args.events,
            large: args.large.then_some(args.large_events),
            tasks: args.tasks,
            batch: args.batch,
            copy_rows: args.copy_rows,
            workers: workers(),
            dir,
            keep: args.shared.keep_db,
            binary,
            root,
        })
    }
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

/// Runs the ingest benchmark.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let settings = Settings::new(&args)?;
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
        env: Vec::new(),
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
