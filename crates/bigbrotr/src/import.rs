//! `bigbrotr import`: archives NIP-01 events read as JSON lines (the format
//! strfry and nak export) with provenance to one relay.
//!
//! Reading and parsing run on a blocking thread and hand batches over a
//! bounded channel to a few concurrent inserts, so memory stays flat
//! whatever the file size, and signature checks (inside
//! [`Brotr::insert_event_batch`]) overlap the database writes.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::num::NonZeroUsize;

use anyhow::Context as _;
use bigbrotr_brotr::{Brotr, RejectReason, RelayId};
use nostr::{Event, JsonUtil};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// How an import runs.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Events per batch; each batch is stored in one transaction per chunk
    /// of `brotr.batch_size`.
    pub batch_size: NonZeroUsize,
    /// Batches being stored at once.
    pub in_flight: NonZeroUsize,
    /// When the events were seen on the relay (Unix seconds); `None`
    /// stamps each batch with the time it is stored.
    pub seen_at: Option<i64>,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Non-empty lines read.
    pub read: u64,
    /// Events newly archived.
    pub stored: u64,
    /// Valid events that were archived already (or earlier in the input).
    pub duplicates: u64,
    /// New (event, relay) provenance rows.
    pub relations_stored: u64,
    /// Lines refused, by reason.
    pub rejected: BTreeMap<&'static str, u64>,
}

impl ImportSummary {
    /// All lines refused.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    fn add(&mut self, other: &ImportSummary) {
        self.read += other.read;
        self.stored += other.stored;
        self.duplicates += other.duplicates;
        self.relations_stored += other.relations_stored;
        for (reason, count) in &other.rejected {
            *self.rejected.entry(reason).or_default() += count;
        }
    }
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "read {}, stored {}, duplicates {}, provenance rows {}, rejected {}",
            self.read,
            self.stored,
            self.duplicates,
            self.relations_stored,
            self.rejected_total()
        )?;
        if !self.rejected.is_empty() {
            let reasons: Vec<String> = self
                .rejected
                .iter()
                .map(|(reason, count)| format!("{reason}: {count}"))
                .collect();
            write!(f, " ({})", reasons.join(", "))?;
        }
        Ok(())
    }
}

/// The short name of a reason, as counted in the summary and written to the
/// rejects file.
pub(crate) fn reason_key(reason: &RejectReason) -> &'static str {
    match reason {
        RejectReason::InvalidId => "invalid_id",
        RejectReason::InvalidSignature => "invalid_signature",
        RejectReason::CreatedAtOutOfRange { .. } => "created_at_out_of_range",
        _ => "refused",
    }
}

/// One refused line, as written to the rejects file.
#[derive(Debug, serde::Serialize)]
struct RejectLine<'a> {
    line: u64,
    reason: &'static str,
    detail: String,
    input: &'a str,
}

/// A batch handed from the reader to the writers.
struct Batch {
    events: Vec<(Event, RelayId)>,
    /// Line number of each event.
    lines: Vec<u64>,
    /// Lines that did not parse, with why.
    unparsed: Vec<(u64, String, String)>,
    read: u64,
}

/// Reads `input` to its end and archives every valid event with provenance
/// to `relay`. Refused lines are counted and, when `rejects` is given,
/// written there as JSON lines `{"line", "reason", "detail", "input"}`.
/// `progress` is called with the running summary after every batch.
pub async fn import<R, W>(
    brotr: &Brotr,
    input: R,
    relay: RelayId,
    options: &ImportOptions,
    mut rejects: Option<W>,
    mut progress: impl FnMut(&ImportSummary),
) -> anyhow::Result<ImportSummary>
where
    R: BufRead + Send + 'static,
    W: Write,
{
    let (sender, mut receiver) = mpsc::channel::<std::io::Result<Batch>>(options.in_flight.get());
    let batch_size = options.batch_size.get();
    let reader =
        tokio::task::spawn_blocking(move || read_batches(input, relay, batch_size, &sender));

    let mut summary = ImportSummary::default();
    let mut writers: JoinSet<anyhow::Result<(ImportSummary, Vec<RejectOut>)>> = JoinSet::new();
    let mut input_done = false;
    loop {
        // Keep `in_flight` batches being stored while input lasts.
        while !input_done && writers.len() < options.in_flight.get() {
            match receiver.recv().await {
                Some(batch) => {
                    let batch = batch.context("reading the input")?;
                    let brotr = brotr.clone();
                    let seen_at = options
                        .seen_at
                        .unwrap_or_else(bigbrotr_utils::now_timestamp);
                    writers.spawn(async move { store_batch(&brotr, batch, seen_at).await });
                }
                None => input_done = true,
            }
        }
        let Some(done) = writers.join_next().await else {
            break;
        };
        let (part, refused) = done.context("a batch task failed")??;
        summary.add(&part);
        if let Some(out) = rejects.as_mut() {
            for reject in &refused {
                let line = RejectLine {
                    line: reject.line,
                    reason: reject.reason,
                    detail: reject.detail.clone(),
                    input: &reject.input,
                };
                serde_json::to_writer(&mut *out, &line).context("writing the rejects file")?;
                out.write_all(b"\n").context("writing the rejects file")?;
            }
        }
        progress(&summary);
    }
    reader.await.context("the reader task failed")?;
    if let Some(out) = rejects.as_mut() {
        out.flush().context("writing the rejects file")?;
    }
    Ok(summary)
}

struct RejectOut {
    line: u64,
    reason: &'static str,
    detail: String,
    input: String,
}

async fn store_batch(
    brotr: &Brotr,
    batch: Batch,
    seen_at: i64,
) -> anyhow::Result<(ImportSummary, Vec<RejectOut>)> {
    let mut summary = ImportSummary {
        read: batch.read,
        ..ImportSummary::default()
    };
    let mut refused = Vec::new();
    for (line, detail, input) in batch.unparsed {
        *summary.rejected.entry("invalid_event_json").or_default() += 1;
        refused.push(RejectOut {
            line,
            reason: "invalid_event_json",
            detail,
            input,
        });
    }
    if !batch.events.is_empty() {
        let report = brotr
            .insert_event_batch(&batch.events, seen_at)
            .await
            .with_context(|| {
                format!(
                    "storing the events of lines {}..={}",
                    batch.lines.first().copied().unwrap_or_default(),
                    batch.lines.last().copied().unwrap_or_default()
                )
            })?;
        summary.stored = report.stored;
        summary.duplicates = report.duplicates;
        summary.relations_stored = report.relations_stored;
        for rejected in report.rejected {
            let key = reason_key(&rejected.reason);
            *summary.rejected.entry(key).or_default() += 1;
            let (line, input) = match (
                batch.lines.get(rejected.index),
                batch.events.get(rejected.index),
            ) {
                (Some(line), Some((event, _))) => (*line, event.as_json()),
                _ => (0, String::new()),
            };
            refused.push(RejectOut {
                line,
                reason: key,
                detail: rejected.reason.to_string(),
                input,
            });
        }
    }
    Ok((summary, refused))
}

/// Reads lines into batches until the input ends or the receiver is gone.
fn read_batches<R: BufRead>(
    mut input: R,
    relay: RelayId,
    batch_size: usize,
    sender: &mpsc::Sender<std::io::Result<Batch>>,
) {
    let new_batch = || Batch {
        events: Vec::with_capacity(batch_size),
        lines: Vec::with_capacity(batch_size),
        unparsed: Vec::new(),
        read: 0,
    };
    let mut batch = new_batch();
    let mut line = Vec::new();
    let mut number = 0_u64;
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) => {
                let _ = sender.blocking_send(Err(error));
                return;
            }
        }
        number += 1;
        match parse_line(&line) {
            None => continue,
            Some(Ok(event)) => {
                batch.events.push((event, relay));
                batch.lines.push(number);
            }
            Some(Err((detail, shown))) => batch.unparsed.push((number, detail, shown)),
        }
        batch.read += 1;
        let full = batch.read as usize >= batch_size;
        if full
            && sender
                .blocking_send(Ok(std::mem::replace(&mut batch, new_batch())))
                .is_err()
        {
            // The writers stopped (an error); theirs is the error reported.
            return;
        }
    }
    if batch.read > 0 {
        let _ = sender.blocking_send(Ok(batch));
    }
}

/// One line of input: `None` when blank, else the event or why it is not
/// one (with the line as shown in the rejects file).
fn parse_line(line: &[u8]) -> Option<Result<Event, (String, String)>> {
    let text = match std::str::from_utf8(line) {
        Ok(text) => text.trim(),
        Err(error) => {
            let shown = String::from_utf8_lossy(line).trim().to_owned();
            return Some(Err((format!("not UTF-8: {error}"), shown)));
        }
    };
    if text.is_empty() {
        return None;
    }
    Some(Event::from_json(text).map_err(|error| (error.to_string(), text.to_owned())))
}
