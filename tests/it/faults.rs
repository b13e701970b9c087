//! The archive under faults: PgBouncer stopped and started again, and
//! PostgreSQL restarted, in the middle of an import of 100 000 events, each on
//! a private cluster (the shared development database is never touched). The
//! import rides the fault out, or fails after its retries and a second run
//! completes it; either way every event and every provenance row is stored
//! exactly once.

use std::io::{BufRead, Cursor, Read};
use std::num::NonZeroUsize;
use std::sync::{mpsc, Arc, OnceLock};
use std::time::Duration;

use bigbrotr::{import, ImportOptions, ImportSummary};
use bigbrotr_brotr::{Brotr, RelayId};
use bigbrotr_config::{BrotrConfig, PoolConfig, RetryConfig};
use bigbrotr_pool::{ConnectionPool, PoolStats};
use bigbrotr_test_support::PrivateCluster;
use nostr::{EventBuilder, JsonUtil, Keys, Timestamp};

/// Events imported.
const EVENTS: u64 = 100_000;
/// Events stored before the fault is injected.
const FAULT_AFTER: u64 = 20_000;
/// The import reads no line past this one until the fault is under way, so
/// it cannot finish before it.
const GATE_AT_LINE: usize = 40_000;
/// Events per import batch.
const BATCH_SIZE: usize = 500;
/// Import batches stored at once.
const IN_FLIGHT: usize = 2;

/// How the database is broken during the import.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// PgBouncer stops (its client connections break) and starts again
    /// after a while.
    PgBouncerStopsAndStarts,
    /// PostgreSQL restarts in fast mode; PgBouncer stays up.
    PostgresRestarts,
}

/// 100 000 signed text notes by a few authors, as JSON lines; made once for
/// every test of the binary, signed on all cores.
fn signed_events() -> Arc<[u8]> {
    static EVENTS_JSONL: OnceLock<Arc<[u8]>> = OnceLock::new();
    Arc::clone(EVENTS_JSONL.get_or_init(|| {
        let authors: Vec<Keys> = (0..4).map(|_| Keys::generate()).collect();
        let threads = std::thread::available_parallelism().map_or(2, NonZeroUsize::get);
        let per_thread = EVENTS.div_ceil(threads as u64);
        let parts: Vec<String> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads as u64)
                .map(|t| {
                    let authors = &authors;
                    scope.spawn(move || {
                        let mut part = String::new();
                        for i in t * per_thread..((t + 1) * per_thread).min(EVENTS) {
                            let event = EventBuilder::text_note(format!("fault test note {i}"))
                                .custom_created_at(Timestamp::from_secs(1_700_000_000 + i))
                                .sign_with_keys(&authors[i as usize % authors.len()])
                                .expect("a text note signs");
                            part.push_str(&event.as_json());
                            part.push('\n');
                        }
                        part
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|worker| worker.join().expect("a signing thread panicked"))
                .collect()
        });
        Arc::from(parts.concat().into_bytes())
    }))
}

/// The input, held back at a line boundary until the gate is opened (its
/// sender sends or is dropped).
struct GatedInput {
    data: Arc<[u8]>,
    position: usize,
    gate_at: usize,
    gate: Option<mpsc::Receiver<()>>,
}

impl GatedInput {
    fn new(data: Arc<[u8]>, line: usize, gate: mpsc::Receiver<()>) -> Self {
        let gate_at = data
            .iter()
            .enumerate()
            .filter(|(_, byte)| **byte == b'\n')
            .nth(line - 1)
            .map_or(data.len(), |(at, _)| at + 1);
        Self {
            data,
            position: 0,
            gate_at,
            gate: Some(gate),
        }
    }
}

impl BufRead for GatedInput {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        // The import reads on a blocking thread: waiting here holds it back.
        if self.position >= self.gate_at {
            if let Some(gate) = self.gate.take() {
                let _ = gate.recv();
            }
        }
        let end = if self.gate.is_some() {
            self.gate_at
        } else {
            self.data.len()
        };
        Ok(&self.data[self.position..end])
    }

    fn consume(&mut self, amount: usize) {
        self.position += amount;
    }
}

impl Read for GatedInput {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// An archive on the cluster whose pool retries for long enough to outlast
/// a fault of a few seconds.
async fn archive(cluster: &PrivateCluster) -> Brotr {
    let pool = ConnectionPool::new(
        &cluster.database_config(),
        &PoolConfig {
            min_size: 1,
            max_size: 4,
            timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(30),
        },
        &RetryConfig {
            max_attempts: 20,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            exponential_base: 2.0,
        },
    )
    .unwrap();
    pool.connect().await.unwrap();
    // The events are known good: checking their signatures again would only
    // leave the database idle more of the time, and faults less to hit.
    let config = BrotrConfig {
        enable_event_validation: false,
        ..BrotrConfig::default()
    };
    Brotr::new(pool, config).unwrap()
}

fn options() -> ImportOptions {
    ImportOptions {
        batch_size: NonZeroUsize::new(BATCH_SIZE).unwrap(),
        in_flight: NonZeroUsize::new(IN_FLIGHT).unwrap(),
        seen_at: Some(1_700_000_000),
    }
}

/// `SELECT count(*), count(DISTINCT <distinct>) FROM <table>`.
async fn counts(brotr: &Brotr, table: &str, distinct: &str) -> (i64, i64) {
    let row = brotr
        .pool()
        .fetch_one(
            &format!("SELECT count(*), count(DISTINCT {distinct}) FROM {table}"),
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// Imports the events with `fault` injected once `FAULT_AFTER` of them are
/// stored, re-runs the import if it gave up, and checks that the archive
/// holds every event and provenance row exactly once. Returns what the pool
/// counted.
async fn import_through(fault: Fault) -> PoolStats {
    let (data, cluster) = tokio::join!(
        tokio::task::spawn_blocking(signed_events),
        PrivateCluster::start("bigbrotr"),
    );
    let (data, cluster) = (data.unwrap(), cluster.unwrap());
    let brotr = archive(&cluster).await;
    let relay: RelayId = brotr
        .insert_relay("wss://faults.example", 1_700_000_000)
        .await
        .unwrap();

    let (open_gate, gate) = mpsc::channel();
    // The running summary: all there is of a run that fails.
    let (progress, mut so_far) = tokio::sync::watch::channel(ImportSummary::default());
    let first = tokio::spawn({
        let brotr = brotr.clone();
        let input = GatedInput::new(Arc::clone(&data), GATE_AT_LINE, gate);
        async move {
            import(
                &brotr,
                input,
                relay,
                &options(),
                None::<Vec<u8>>,
                move |summary| {
                    progress.send_replace(summary.clone());
                },
            )
            .await
        }
    });
    if so_far
        .wait_for(|summary| summary.stored + summary.duplicates >= FAULT_AFTER)
        .await
        .is_err()
    {
        panic!(
            "the import ended before the fault: {:?}",
            first.await.unwrap().map_err(|e| format!("{e:#}"))
        );
    }
    match fault {
        Fault::PgBouncerStopsAndStarts => {
            cluster.stop_pgbouncer().await.unwrap();
            drop(open_gate);
            tokio::time::sleep(Duration::from_millis(1500)).await;
            cluster.start_pgbouncer().await.unwrap();
        }
        Fault::PostgresRestarts => {
            drop(open_gate);
            cluster.restart_postgres().await.unwrap();
        }
    }

    let mut runs: Vec<ImportSummary> = Vec::new();
    match first.await.unwrap() {
        Ok(summary) => runs.push(summary),
        Err(first_error) => {
            // Allowed: the import gave up after its retries. Running it
            // again must store exactly what is missing.
            runs.push(so_far.borrow().clone());
            let again = import(
                &brotr,
                Cursor::new(Arc::clone(&data)),
                relay,
                &options(),
                None::<Vec<u8>>,
                |_| {},
            )
            .await
            .unwrap_or_else(|second| {
                panic!("the re-run failed too: {second:#}; the first run: {first_error:#}")
            });
            runs.push(again);
        }
    }

    let stats = brotr.pool().stats();
    let context = format!("{fault:?}: runs {runs:?}, pool {stats:?}");
    assert_eq!(
        counts(&brotr, "events", "id").await,
        (100_000, 100_000),
        "{context}"
    );
    assert_eq!(
        counts(&brotr, "events_relays", "(event_id, relay_id)").await,
        (100_000, 100_000),
        "{context}"
    );
    let last = runs.last().unwrap();
    assert_eq!(last.read, EVENTS, "{context}");
    assert_eq!(last.rejected_total(), 0, "{context}");
    assert_eq!(last.stored + last.duplicates, EVENTS, "{context}");
    // What the runs report as newly stored never exceeds what is there. It
    // falls short only by chunks committed whose answer the fault lost
    // (reported as duplicates by the retry), which were in flight then: at
    // most the batches in flight at the fault and when a run gave up.
    let in_flight = (2 * IN_FLIGHT * BATCH_SIZE) as u64;
    for (what, total) in [
        ("stored", runs.iter().map(|run| run.stored).sum::<u64>()),
        (
            "relations stored",
            runs.iter().map(|run| run.relations_stored).sum::<u64>(),
        ),
    ] {
        assert!(
            (EVENTS - in_flight..=EVENTS).contains(&total),
            "{what}: {total}; {context}"
        );
    }
    stats
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_survives_pgbouncer_stopping_and_restarting() {
    let stats = import_through(Fault::PgBouncerStopsAndStarts).await;
    // Connections broke or could not be opened while PgBouncer was down.
    assert!(stats.retries > 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_survives_postgresql_restarting() {
    import_through(Fault::PostgresRestarts).await;
}
