//! The in-process measurements: validation alone, a plain binary `COPY`,
//! and [`Brotr::insert_event_batch`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bigbrotr_brotr::{validate_event, Brotr, InsertEventsReport, RelayId};
use bigbrotr_config::BrotrConfig;
use bigbrotr_pool::tokio_postgres::types::Json;
use bigbrotr_pool::{ConnectionPool, Type};
use nostr::Event;
use tokio::task::JoinSet;

use crate::cpu::{CpuSnapshot, CpuUse};
use crate::db::{count, Server};

/// The relay every event is seen on.
pub(crate) const FIRST_RELAY: &str = "wss://relay.one.example";
/// The relay every other event is also seen on.
pub(crate) const SECOND_RELAY: &str = "wss://relay.two.example";
/// When the events were seen (Unix seconds).
const SEEN_AT: i64 = 1_702_600_000;

/// Checks every event on `workers` threads; fails when one is refused.
pub(crate) fn validate(events: &[Event], workers: usize) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let per_worker = events.len().div_ceil(workers.max(1)).max(1);
    let refused: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = events
            .chunks(per_worker)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .filter(|event| validate_event(event).is_err())
                        .count()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or(usize::MAX))
            .sum()
    });
    let elapsed = start.elapsed();
    anyhow::ensure!(refused == 0, "{refused} corpus events failed validation");
    Ok(elapsed)
}

/// The table the raw `COPY` writes: the columns of an event, no index, no
/// constraint.
const COPY_TABLE: &str = "CREATE TABLE bench_events (
    id bytea, pubkey bytea, sig bytea, created_at bigint, kind integer, tags jsonb, content text
)";
const COPY_SQL: &str =
    "COPY bench_events (id, pubkey, sig, created_at, kind, tags, content) FROM STDIN (FORMAT binary)";
const COPY_TYPES: [Type; 7] = [
    Type::BYTEA,
    Type::BYTEA,
    Type::BYTEA,
    Type::INT8,
    Type::INT4,
    Type::JSONB,
    Type::TEXT,
];

/// Copies every event into an unindexed table of a fresh database, in
/// transactions of `rows_per_transaction` rows, `tasks` at once.
pub(crate) async fn copy(
    server: &Server,
    events: Arc<Vec<Event>>,
    tasks: usize,
    rows_per_transaction: usize,
    keep: bool,
) -> anyhow::Result<(Duration, Option<CpuUse>)> {
    let db = server.create("copy").await?;
    let pool = server.pool(&db).await?;
    pool.batch_execute(COPY_TABLE)
        .await
        .context("creating the COPY table")?;
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_start = CpuSnapshot::take();
    let start = Instant::now();
    let mut workers = JoinSet::new();
    for _ in 0..tasks {
        let pool = pool.clone();
        let events = Arc::clone(&events);
        let next = Arc::clone(&next);
        workers.spawn(async move {
            loop {
                let from = next.fetch_add(1, Ordering::Relaxed) * rows_per_transaction;
                if from >= events.len() {
                    return anyhow::Ok(());
                }
                let to = (from + rows_per_transaction).min(events.len());
                copy_rows(&pool, &events[from..to]).await?;
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.context("a COPY task panicked")??;
    }
    let elapsed = start.elapsed();
    let cpu = cpu_used(cpu_start);
    let copied = count(&pool, "bench_events").await?;
    anyhow::ensure!(
        copied == events.len() as u64,
        "COPY stored {copied} rows of {}",
        events.len()
    );
    pool.disconnect(Duration::from_secs(5)).await;
    db.finish(keep).await?;
    Ok((elapsed, cpu))
}

async fn copy_rows(pool: &ConnectionPool, events: &[Event]) -> anyhow::Result<()> {
    let mut transaction = pool.begin().await.context("BEGIN")?;
    let mut copy = transaction
        .copy_in_binary(COPY_SQL, &COPY_TYPES)
        .await
        .context("starting the COPY")?;
    for event in events {
        let id: &[u8] = event.id.as_bytes();
        let pubkey: &[u8] = event.pubkey.as_bytes();
        let sig = event.sig.serialize();
        let created_at = i64::try_from(event.created_at.as_secs())?;
        let kind = i32::from(event.kind.as_u16());
        let tags = Json(&event.tags);
        let content = event.content.as_str();
        copy.write(&[&id, &pubkey, &&sig[..], &created_at, &kind, &tags, &content])
            .await
            .context("writing a COPY row")?;
    }
    copy.finish().await.context("ending the COPY")?;
    transaction.commit().await.context("COMMIT")?;
    Ok(())
}

/// The columns `COPY` fills in the implementation's own tables.
const SCHEMA_EVENTS_SQL: &str =
    "COPY events (id, pubkey, created_at, kind, tags, content, sig, tagvalues) \
     FROM STDIN (FORMAT binary)";
const SCHEMA_EVENTS_TYPES: [Type; 8] = [
    Type::BYTEA,
    Type::BYTEA,
    Type::INT8,
    Type::INT4,
    Type::JSONB,
    Type::TEXT,
    Type::BYTEA,
    Type::TEXT_ARRAY,
];
const SCHEMA_RELATIONS_SQL: &str =
    "COPY events_relays (event_id, relay_id, seen_at) FROM STDIN (FORMAT binary)";
const SCHEMA_RELATIONS_TYPES: [Type; 3] = [Type::BYTEA, Type::INT4, Type::INT8];

/// Copies every event and every sighting (the first relay for all, the
/// second for every other one) straight into the implementation's indexed
/// `events` and `events_relays` tables of a fresh database: what the schema
/// itself costs, without deduplication or any check. Transactions of
/// `rows_per_transaction` events, `tasks` at once.
pub(crate) async fn copy_into_schema(
    server: &Server,
    events: Arc<Vec<Event>>,
    tasks: usize,
    rows_per_transaction: usize,
    keep: bool,
) -> anyhow::Result<(Duration, Option<CpuUse>)> {
    let db = server.create("copy_schema").await?;
    let pool = server.pool(&db).await?;
    bigbrotr_brotr::apply_schema(&pool, &server.implementation().sql_dir())
        .await
        .context("applying the schema")?;
    let brotr = Brotr::new(pool.clone(), server.brotr_config().clone())?;
    let first = brotr.insert_relay(FIRST_RELAY, SEEN_AT).await?.get();
    let second = brotr.insert_relay(SECOND_RELAY, SEEN_AT).await?.get();
    // Sightings on the second relay come after all first ones, as in the
    // insert measurement: one part per batch of the first pass, then one
    // per batch of every other event.
    let parts = events.len().div_ceil(rows_per_transaction);
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_start = CpuSnapshot::take();
    let start = Instant::now();
    let mut workers = JoinSet::new();
    for _ in 0..tasks {
        let pool = pool.clone();
        let events = Arc::clone(&events);
        let next = Arc::clone(&next);
        workers.spawn(async move {
            loop {
                let part = next.fetch_add(1, Ordering::Relaxed);
                if part >= 2 * parts {
                    return anyhow::Ok(());
                }
                let from = (part % parts) * rows_per_transaction;
                let to = (from + rows_per_transaction).min(events.len());
                if part < parts {
                    copy_schema_rows(&pool, &events[from..to], first, true).await?;
                } else {
                    let every_other: Vec<&Event> = events[from..to].iter().step_by(2).collect();
                    let every_other: Vec<Event> = every_other.into_iter().cloned().collect();
                    copy_schema_rows(&pool, &every_other, second, false).await?;
                }
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.context("a COPY task panicked")??;
    }
    let elapsed = start.elapsed();
    let cpu = cpu_used(cpu_start);
    check_archive(&pool, events.len(), events.len().div_ceil(2)).await?;
    pool.disconnect(Duration::from_secs(5)).await;
    db.finish(keep).await?;
    Ok((elapsed, cpu))
}

/// One transaction: the rows of `events` (when `with_events`) and their
/// sightings on `relay`.
async fn copy_schema_rows(
    pool: &ConnectionPool,
    events: &[Event],
    relay: i32,
    with_events: bool,
) -> anyhow::Result<()> {
    let mut transaction = pool.begin().await.context("BEGIN")?;
    if with_events {
        let mut copy = transaction
            .copy_in_binary(SCHEMA_EVENTS_SQL, &SCHEMA_EVENTS_TYPES)
            .await
            .context("starting the COPY of events")?;
        for event in events {
            let id: &[u8] = event.id.as_bytes();
            let pubkey: &[u8] = event.pubkey.as_bytes();
            let sig = event.sig.serialize();
            let created_at = i64::try_from(event.created_at.as_secs())?;
            let kind = i32::from(event.kind.as_u16());
            let tags = Json(&event.tags);
            let content = event.content.as_str();
            let tagvalues = bigbrotr_brotr::tagvalues(event);
            copy.write(&[
                &id,
                &pubkey,
                &created_at,
                &kind,
                &tags,
                &content,
                &&sig[..],
                &tagvalues,
            ])
            .await
            .context("writing an events row")?;
        }
        copy.finish().await.context("ending the COPY of events")?;
    }
    let mut copy = transaction
        .copy_in_binary(SCHEMA_RELATIONS_SQL, &SCHEMA_RELATIONS_TYPES)
        .await
        .context("starting the COPY of events_relays")?;
    for event in events {
        let id: &[u8] = event.id.as_bytes();
        copy.write(&[&id, &relay, &SEEN_AT])
            .await
            .context("writing an events_relays row")?;
    }
    copy.finish()
        .await
        .context("ending the COPY of events_relays")?;
    transaction.commit().await.context("COMMIT")?;
    Ok(())
}

/// What [`insert`] measured.
#[derive(Debug)]
pub(crate) struct Inserted {
    /// Wall time of all the calls.
    pub(crate) elapsed: Duration,
    /// Items given: every event with the first relay, then every other one
    /// with the second.
    pub(crate) items: usize,
    /// The calls' reports, added up.
    pub(crate) report: InsertEventsReport,
    /// CPU time of the calls, by party.
    pub(crate) cpu: Option<CpuUse>,
}

/// CPU used since `start`, when both ends could be read.
pub(crate) fn cpu_used(start: Option<CpuSnapshot>) -> Option<CpuUse> {
    Some(start?.until(&CpuSnapshot::take()?))
}

/// Archives every event as seen on the first relay and every other one as
/// also seen on the second, into a fresh database with the implementation's
/// schema, through [`Brotr::insert_event_batch`]: calls of `batch` items,
/// `tasks` at once, event validation on or off.
pub(crate) async fn insert(
    server: &Server,
    events: &[Event],
    validation: bool,
    tasks: usize,
    batch: usize,
    keep: bool,
) -> anyhow::Result<Inserted> {
    let label = if validation {
        "insert_validated"
    } else {
        "insert_unvalidated"
    };
    let db = server.create(label).await?;
    let pool = server.pool(&db).await?;
    bigbrotr_brotr::apply_schema(&pool, &server.implementation().sql_dir())
        .await
        .context("applying the schema")?;
    let config = BrotrConfig {
        enable_event_validation: validation,
        ..server.brotr_config().clone()
    };
    let brotr = Brotr::new(pool.clone(), config).context("setting up the archive")?;
    let first = brotr.insert_relay(FIRST_RELAY, SEEN_AT).await?;
    let second = brotr.insert_relay(SECOND_RELAY, SEEN_AT).await?;

    let items: Vec<(Event, RelayId)> = events
        .iter()
        .map(|event| (event.clone(), first))
        .chain(
            events
                .iter()
                .step_by(2)
                .map(|event| (event.clone(), second)),
        )
        .collect();
    let item_count = items.len();
    let batches: Arc<Vec<Vec<(Event, RelayId)>>> =
        Arc::new(items.chunks(batch).map(<[_]>::to_vec).collect());
    drop(items);

    let next = Arc::new(AtomicUsize::new(0));
    let cpu_start = CpuSnapshot::take();
    let start = Instant::now();
    let mut workers = JoinSet::new();
    for _ in 0..tasks {
        let brotr = brotr.clone();
        let batches = Arc::clone(&batches);
        let next = Arc::clone(&next);
        workers.spawn(async move {
            let mut total = InsertEventsReport::default();
            while let Some(batch) = batches.get(next.fetch_add(1, Ordering::Relaxed)) {
                let report = brotr
                    .insert_event_batch(batch, SEEN_AT)
                    .await
                    .context("insert_event_batch")?;
                add(&mut total, report);
            }
            anyhow::Ok(total)
        });
    }
    let mut report = InsertEventsReport::default();
    while let Some(done) = workers.join_next().await {
        add(&mut report, done.context("an insert task panicked")??);
    }
    let elapsed = start.elapsed();
    let cpu = cpu_used(cpu_start);

    check_archive(&pool, events.len(), events.len().div_ceil(2)).await?;
    pool.disconnect(Duration::from_secs(5)).await;
    db.finish(keep).await?;
    Ok(Inserted {
        elapsed,
        items: item_count,
        report,
        cpu,
    })
}

/// Fails unless the archive holds `events` events and `events + second`
/// provenance rows.
pub(crate) async fn check_archive(
    pool: &ConnectionPool,
    events: usize,
    second: usize,
) -> anyhow::Result<()> {
    let stored = count(pool, "events").await?;
    let relations = count(pool, "events_relays").await?;
    anyhow::ensure!(
        stored == events as u64 && relations == (events + second) as u64,
        "the archive holds {stored} events and {relations} provenance rows; \
         expected {events} and {}",
        events + second
    );
    Ok(())
}

fn add(total: &mut InsertEventsReport, report: InsertEventsReport) {
    total.stored += report.stored;
    total.duplicates += report.duplicates;
    total.relations_stored += report.relations_stored;
    total.rejected.extend(report.rejected);
}
