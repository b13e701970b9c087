//! The relay benchmark (`bigbrotr-bench relay`): queries per second and
//! latency of typical filters against the archive relay (`bigbrotr run
//! relay`, through PgBouncer) and against nostr-rs-relay holding the same
//! events, in the same run.
//!
//! The parts: `events` (the signed events, written once, and what is kept
//! of them to pick filter values), `shapes` (the filters asked),
//! `nostr_rs` (nostr-rs-relay: its data folder, its bulk load, its
//! process), `client` (the connections sending the requests and timing
//! them) and `print` (the table).

mod client;
mod events;
mod nostr_rs;
mod print;
mod shapes;

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bigbrotr_config::Implementation;
use tokio::time::Instant;

use self::client::Outcome;
use self::events::Sample;
use self::nostr_rs::NostrRsRelay;
use self::print::{print_mismatches, print_table, Line};
use self::shapes::Shape;
use crate::child::{self, Bigbrotr, Running};
use crate::cli::{count, Locations, Shared};
use crate::cpu::{self, CpuSnapshot};
use crate::db::Server;
use crate::output::{group, load_average, progress};
use crate::{workers, IMPLEMENTATION};

/// The relay the events are imported as seen on.
const SEEN_ON: &str = "wss://relay.bench.example";
/// Longest wait for a relay to answer after it started.
const START_WAIT: Duration = Duration::from_secs(120);
/// Longest wait for a relay to exit after `SIGTERM`.
const STOP_WAIT: Duration = Duration::from_secs(40);

/// The settings of the relay benchmark.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Events both relays hold
    #[arg(
        long,
        env = "BENCH_RELAY_EVENTS",
        value_name = "COUNT",
        default_value_t = 1_000_000,
        value_parser = count
    )]
    events: usize,
    /// Requests measured per filter shape and relay
    #[arg(
        long,
        env = "BENCH_RELAY_REQUESTS",
        value_name = "COUNT",
        default_value_t = 2000,
        value_parser = count
    )]
    requests: usize,
    /// Requests sent before them, unmeasured, to warm the caches
    #[arg(
        long,
        env = "BENCH_RELAY_WARMUP",
        value_name = "COUNT",
        default_value_t = 200,
        value_parser = count
    )]
    warmup: usize,
    /// Connections sending requests at once
    #[arg(
        long,
        env = "BENCH_RELAY_CONNECTIONS",
        value_name = "COUNT",
        default_value_t = 8,
        value_parser = count
    )]
    connections: usize,
    /// The settings every benchmark takes.
    #[command(flatten)]
    shared: Shared,
}

/// A relay under measurement.
struct Served {
    name: &'static str,
    url: String,
    running: Running,
    /// The processes whose CPU time a request costs, besides the relay's:
    /// PostgreSQL and PgBouncer for the archive relay.
    uses_database: bool,
}

/// Runs the relay benchmark.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let locations = Locations::new(&args.shared)?;
    anyhow::ensure!(
        locations.binary.is_file(),
        "{} not found: build it first (cargo build --release -p bigbrotr), or set BIGBROTR_BIN",
        locations.binary.display()
    );
    let implementation = Implementation::open(&locations.root, IMPLEMENTATION)
        .with_context(|| format!("opening implementation `{IMPLEMENTATION}`"))?;
    let server = Server::of(implementation)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let other = NostrRsRelay::find();
    if other.is_none() {
        println!("{}", nostr_rs::install_hint());
    }

    progress(&format!(
        "relay: {} events in {}",
        group(args.events as f64),
        locations.dir.display()
    ));
    let (path, generated) = events::ensure(&locations.dir, args.events, workers())?;
    progress(if generated {
        "  signed and written"
    } else {
        "  reused from an earlier run"
    });
    let sample = Sample::read(&path)?;
    anyhow::ensure!(
        sample.len() == args.events,
        "{} holds {} events, not {}",
        path.display(),
        sample.len(),
        args.events
    );

    let port = free_port()?;
    let bigbrotr = Bigbrotr {
        binary: locations.binary.clone(),
        root: locations.root.clone(),
        implementation: IMPLEMENTATION.to_owned(),
        log_dir: locations.dir.clone(),
        env_remove: Vec::new(),
        env: vec![
            (
                "BIGBROTR_RELAY__LISTEN".to_owned(),
                format!("127.0.0.1:{port}"),
            ),
            // The benchmark's connections all come from loopback.
            (
                "BIGBROTR_RELAY__MAX_CONNECTIONS_PER_IP".to_owned(),
                "1000".to_owned(),
            ),
            // Any free port: no collision with a running service.
            (
                "BIGBROTR_RUNTIME__HTTP__LISTEN".to_owned(),
                "127.0.0.1:0".to_owned(),
            ),
        ],
    };
    let db = runtime.block_on(server.create("relay"))?;
    let result = runtime.block_on(measure(
        &args,
        &server,
        &db,
        &bigbrotr,
        port,
        other.as_ref(),
        &path,
        &sample,
        &locations.dir,
    ));
    runtime.block_on(db.finish(args.shared.keep_db))?;
    result
}

/// Loads both relays, starts them, runs every shape against each, prints
/// the table, and stops them.
#[allow(clippy::too_many_arguments)]
async fn measure(
    args: &Args,
    server: &Server,
    db: &crate::db::BenchDb,
    bigbrotr: &Bigbrotr,
    port: u16,
    other: Option<&NostrRsRelay>,
    path: &Path,
    sample: &Sample,
    dir: &Path,
) -> anyhow::Result<()> {
    let events = path
        .to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))?;
    progress("BigBrotr: bigbrotr db init, bigbrotr import");
    bigbrotr.run("relay-db-init", db.name(), &["db", "init"])?;
    let import = bigbrotr.run(
        "relay-import",
        db.name(),
        &["import", events, "--relay", SEEN_ON],
    )?;
    progress(&format!("  {}", import.stdout.trim()));
    let pool = server.pool(db).await?;
    let analyzed = Instant::now();
    pool.batch_execute("VACUUM ANALYZE events")
        .await
        .context("VACUUM ANALYZE events")?;
    let analyze = analyzed.elapsed();
    let archived = crate::db::count(&pool, "events").await?;
    pool.disconnect(Duration::from_secs(5)).await;
    anyhow::ensure!(
        archived == sample.len() as u64,
        "the archive holds {archived} events, not {}",
        sample.len()
    );
    let mut loads = vec![format!(
        "BigBrotr: bigbrotr import {:.0} s ({} events/s), then VACUUM ANALYZE events {:.0} s",
        import.elapsed.as_secs_f64(),
        group(sample.len() as f64 / import.elapsed.as_secs_f64().max(1e-9)),
        analyze.as_secs_f64()
    )];

    let mut relays = Vec::new();
    let running = Running {
        child: bigbrotr.spawn("relay-serve", db.name(), &["run", "relay"])?,
    };
    let url = format!("ws://127.0.0.1:{port}");
    relays.push(started("bigbrotr", url, running, true).await?);

    let other_dir = dir.join(format!("nostr-rs-relay-{}", sample.len()));
    if let Some(other) = other {
        progress("nostr-rs-relay: a fresh database, bulkloader, then the tag rows");
        let port = free_port()?;
        other.prepare(&other_dir, port)?;
        let url = format!("ws://127.0.0.1:{port}");
        // The relay creates the database the bulk loader needs.
        let mut first = started(
            "nostr-rs-relay",
            url.clone(),
            other.start(&other_dir)?,
            false,
        )
        .await?;
        child::stop(&mut first.running, None, STOP_WAIT).await?;
        let bulk = other.bulk_load(&other_dir, path)?;
        let (tags, held) = other.fill_tags(&other_dir)?;
        anyhow::ensure!(
            held == sample.len() as u64,
            "nostr-rs-relay holds {held} events, not {}",
            sample.len()
        );
        loads.push(format!(
            "nostr-rs-relay {}: bulkloader {:.0} s, then the tag rows and ANALYZE {:.0} s: \
             {:.0} s in all ({} events/s)",
            nostr_rs::VERSION,
            bulk.as_secs_f64(),
            tags.as_secs_f64(),
            (bulk + tags).as_secs_f64(),
            group(sample.len() as f64 / (bulk + tags).as_secs_f64().max(1e-9))
        ));
        let served = started("nostr-rs-relay", url, other.start(&other_dir)?, false).await?;
        relays.push(served);
    }
    for line in &loads {
        progress(&format!("  {line}"));
    }

    let mut lines = Vec::new();
    let mut mismatches = Vec::new();
    for shape in Shape::ALL {
        if !shape.possible(sample) {
            progress(&format!("  {}: no values to pick from", shape.name()));
            continue;
        }
        let filters = shape.filters(sample, args.warmup + args.requests);
        let warm = Arc::new(filters[..args.warmup].to_vec());
        let measured = Arc::new(filters[args.warmup..].to_vec());
        let mut outcomes: Vec<Outcome> = Vec::new();
        for relay in &mut relays {
            client::run(&relay.url, Arc::clone(&warm), args.connections).await?;
            let pid = relay.running.pid();
            let cpu_before = (cpu::process_cpu(pid), CpuSnapshot::take());
            let outcome = client::run(&relay.url, Arc::clone(&measured), args.connections).await?;
            let cpu_after = (cpu::process_cpu(pid), CpuSnapshot::take());
            let cpu = match (cpu_before, cpu_after) {
                ((Some(before), Some(start)), (Some(after), Some(end))) => {
                    let database = start.until(&end);
                    let shared = if relay.uses_database {
                        database.postgres + database.pgbouncer
                    } else {
                        Duration::ZERO
                    };
                    Some(after.saturating_sub(before) + shared)
                }
                _ => None,
            };
            if let Some(exit) = relay.running.child.try_wait().context("checking a relay")? {
                anyhow::bail!("{} exited during the run ({exit})", relay.name);
            }
            let line = Line::new(shape, relay.name, &outcome, cpu);
            progress(&format!(
                "  {:<26} {:<15} {:>7} req/s  p50 {:>6.2} ms  p99 {:>7.2} ms  {:.1} events/req",
                shape.name(),
                relay.name,
                group(line.qps),
                line.p50_ms,
                line.p99_ms,
                line.events_per_request
            ));
            lines.push(line);
            outcomes.push(outcome);
        }
        if let [ours, theirs] = outcomes.as_slice() {
            let differ = ours
                .events
                .iter()
                .zip(&theirs.events)
                .filter(|(a, b)| a != b)
                .count();
            if differ > 0 {
                mismatches.push((
                    shape,
                    differ,
                    ours.events.iter().map(|&n| u64::from(n)).sum::<u64>(),
                    theirs.events.iter().map(|&n| u64::from(n)).sum::<u64>(),
                ));
            }
        }
    }
    for relay in &mut relays {
        child::stop(&mut relay.running, None, STOP_WAIT).await?;
    }
    if other.is_some() && !args.shared.keep_db {
        std::fs::remove_dir_all(&other_dir)
            .with_context(|| format!("removing {}", other_dir.display()))?;
    }

    println!();
    println!(
        "Relays answering REQs, {} events, {} requests per shape and relay (after {} to warm up) \
         over {} connections, {} cores; BigBrotr through PgBouncer at {}",
        group(sample.len() as f64),
        group(args.requests as f64),
        group(args.warmup as f64),
        args.connections,
        workers(),
        server.address()
    );
    for line in &loads {
        println!("load: {line}");
    }
    if let Some(load) = load_average() {
        println!(
            "load average (1, 5, 15 min) at the end: {load}; other work on the machine skews the figures"
        );
    }
    print_table(&lines);
    print_mismatches(&mismatches);
    Ok(())
}

/// `running`, once it answers a `REQ` at `url`.
async fn started(
    name: &'static str,
    url: String,
    mut running: Running,
    uses_database: bool,
) -> anyhow::Result<Served> {
    let deadline = Instant::now() + START_WAIT;
    let probe = Arc::new(vec![r#"{"limit":1}"#.to_owned()]);
    loop {
        if let Some(exit) = running.child.try_wait().context("checking a relay")? {
            anyhow::bail!("{name} exited at its start ({exit}); see its log in the bench folder");
        }
        match client::run(&url, Arc::clone(&probe), 1).await {
            Ok(outcome) if outcome.failures == 0 => break,
            Ok(outcome) if Instant::now() >= deadline => anyhow::bail!(
                "{name} at {url} does not answer: {}",
                outcome.first_failure.unwrap_or_default()
            ),
            Err(error) if Instant::now() >= deadline => {
                return Err(error.context(format!("{name} does not answer")))
            }
            Ok(_) | Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    Ok(Served {
        name,
        url,
        running,
        uses_database,
    })
}

/// A port free on loopback now.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr().context("reading a port")?.port())
}
