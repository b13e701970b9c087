//! The sync of one relay: its windows walked from its cursor, split while
//! they come back full, their events stored in batches, and the cursor
//! advanced after each batch is committed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use bigbrotr_brotr::{validate_event, Brotr, Network, RejectReason};
use nostr::Event;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::connection::{FetchError, Fetched, Limits, RelayConnection};
use crate::filter::{created_at, sort_events, Cursor};
use crate::leases::{advance_cursor, ClaimedRelay};
use crate::report::{Rejections, RelayOutcome, RelayReport, SyncCounts};
use crate::synchronizer::{Inner, TARGET};

/// When the leases of a cycle are known to be valid until: the start of
/// their latest renewal (or claim) plus their duration, on this machine's
/// monotonic clock.
#[derive(Debug)]
pub(crate) struct LeaseClock {
    valid_until: Mutex<Instant>,
}

impl LeaseClock {
    pub(crate) fn new() -> Self {
        Self {
            valid_until: Mutex::new(Instant::now()),
        }
    }

    /// The leases were renewed (or claimed) by a call that started at
    /// `started`.
    pub(crate) fn renewed(&self, started: Instant, duration: Duration) {
        let mut valid_until = self.valid_until.lock().unwrap_or_else(|e| e.into_inner());
        *valid_until = (*valid_until).max(started + duration);
    }

    /// Whether the leases are still valid, with a margin for the time the
    /// next database call takes.
    pub(crate) fn valid(&self, margin: Duration) -> bool {
        let valid_until = *self.valid_until.lock().unwrap_or_else(|e| e.into_inner());
        Instant::now() + margin < valid_until
    }
}

/// Events waiting to be stored, and the position they take the cursor to.
struct Batch {
    items: Vec<(Event, bigbrotr_brotr::RelayId, i64)>,
    position: Option<Cursor>,
}

/// The sync of one claimed relay.
pub(crate) struct RelaySync {
    pub(crate) inner: Arc<Inner>,
    pub(crate) brotr: Brotr,
    pub(crate) relay: ClaimedRelay,
    pub(crate) cancel: CancellationToken,
    pub(crate) lease: Arc<LeaseClock>,
}

impl RelaySync {
    /// Syncs the relay until it is caught up, its time runs out, it fails or
    /// misbehaves, its lease is lost or the cycle is cancelled; what was
    /// complete by then is stored. Fails only when the database does.
    pub(crate) async fn run(self) -> anyhow::Result<RelayReport> {
        let config = &self.inner.config;
        let started = Instant::now();
        let deadline = started + config.timeouts.total;
        let end = bigbrotr_utils::now_timestamp()
            .saturating_sub(i64::try_from(config.end_lag.as_secs()).unwrap_or(i64::MAX));
        let filter_hash = *self.inner.filter.hash();
        let cursor = if self.relay.filter_hash == Some(filter_hash) {
            self.relay.cursor
        } else {
            if self.relay.cursor.is_some() {
                tracing::info!(
                    target: TARGET,
                    url = %self.relay.url,
                    "the filter changed since this relay's cursor was stored: starting over"
                );
            }
            None
        };
        let mut report = RelayReport {
            relay_id: self.relay.relay_id,
            url: self.relay.url.clone(),
            network: self.relay.network,
            counts: SyncCounts::default(),
            cursor,
            lag: None,
            outcome: RelayOutcome::CaughtUp,
        };
        let mut since = config.start_time;
        let mut skip = None;
        if let Some(cursor) = cursor {
            if cursor.next_second() >= since {
                since = cursor.next_second();
                skip = cursor.event_id.map(|_| cursor);
            }
        }
        if since <= end {
            report.outcome = self.walk(since, skip, end, deadline, &mut report).await?;
        }
        report.lag = report
            .cursor
            .map(|cursor| end.saturating_sub(cursor.created_at).max(0));
        let counts = &report.counts;
        tracing::info!(
            target: TARGET,
            url = %report.url,
            outcome = ?report.outcome,
            received = counts.received,
            stored = counts.stored,
            duplicates = counts.duplicates,
            rejected = counts.rejected.total(),
            windows = counts.windows,
            bisections = counts.bisections,
            incomplete_seconds = counts.incomplete_seconds,
            lag = ?report.lag,
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "relay synced"
        );
        Ok(report)
    }

    /// Walks the windows from `since` to `end`, skipping what `skip` covers
    /// in the first second.
    async fn walk(
        &self,
        mut since: i64,
        mut skip: Option<Cursor>,
        end: i64,
        deadline: Instant,
        report: &mut RelayReport,
    ) -> anyhow::Result<RelayOutcome> {
        let config = &self.inner.config;
        let proxy = match self.relay.network {
            Network::Clearnet => None,
            Network::Tor => match self.inner.proxy().await {
                Ok(proxy) => Some(proxy),
                Err(reason) => return Ok(RelayOutcome::Failed(FetchError::Connect(reason))),
            },
        };
        let mut connection =
            match RelayConnection::open(&self.relay.url, proxy, self.inner.connect_timeout).await {
                Ok(connection) => connection,
                Err(error) => return Ok(RelayOutcome::Failed(error)),
            };
        let limit = match self.relay.max_limit {
            Some(max) if max > 0 => config.limit.min(usize::try_from(max).unwrap_or(usize::MAX)),
            _ => config.limit,
        };
        let second_limit = config.second_limit.max(limit);
        let limits = Limits {
            request: config.timeouts.request,
            idle: config.timeouts.idle,
            deadline,
        };
        let lease_margin = config.timeouts.request.min(config.lease.duration / 3);
        let mut batch = Batch {
            items: Vec::with_capacity(config.batch_size.min(10_000)),
            position: None,
        };
        let mut length = i64::try_from(config.window.as_secs())
            .unwrap_or(i64::MAX)
            .max(1);
        let outcome = 'walk: loop {
            if since > end {
                break RelayOutcome::CaughtUp;
            }
            if self.cancel.is_cancelled() {
                break RelayOutcome::Cancelled;
            }
            if !self.lease.valid(lease_margin) {
                break RelayOutcome::LeaseLost;
            }
            let until = since.saturating_add(length - 1).min(end);
            let mut fetched = match self
                .fetch(&mut connection, since, until, limit, limits, report)
                .await
            {
                Ok(fetched) => fetched,
                Err(outcome) => break outcome,
            };
            if !fetched.complete {
                if until > since {
                    // Split: the first half now, the rest afterwards.
                    length = ((until - since + 1) / 2).max(1);
                    report.counts.bisections += 1;
                    continue;
                }
                if second_limit > limit {
                    let first = fetched.received;
                    fetched = match self
                        .fetch(&mut connection, since, until, second_limit, limits, report)
                        .await
                    {
                        Ok(fetched) => fetched,
                        Err(outcome) => break outcome,
                    };
                    // No more than the first time: the relay caps what it
                    // returns at that, whatever is asked.
                    if fetched.received <= first {
                        fetched.complete = false;
                    }
                }
                if !fetched.complete {
                    report.counts.incomplete_seconds += 1;
                    tracing::warn!(
                        target: TARGET,
                        url = %self.relay.url,
                        second = since,
                        fetched = fetched.events.len(),
                        limit = second_limit,
                        "one second holds more events than the relay returns at once: only part of them is archived"
                    );
                }
            }
            let seen_at = bigbrotr_utils::now_timestamp();
            let received = fetched.received;
            let mut events = fetched.events;
            if let Some(skip) = skip.take() {
                events.retain(|event| !skip.covers(created_at(event), &event.id));
            }
            if !self.brotr.config().enable_event_validation {
                events = self.validate(events, &mut report.counts.rejected).await?;
            }
            sort_events(&mut events);
            for event in events {
                let position = Cursor::at(&event);
                batch.items.push((event, self.relay.relay_id, seen_at));
                if batch.items.len() >= config.batch_size {
                    batch.position = Some(position);
                    if !self.flush(&mut batch, report).await? {
                        break 'walk RelayOutcome::LeaseLost;
                    }
                }
            }
            batch.position = Some(Cursor::end_of(until));
            since = until.saturating_add(1);
            if received.saturating_mul(2) < u64::try_from(limit).unwrap_or(u64::MAX) {
                length = length.saturating_mul(2);
            }
            if report.counts.rejected.total() > config.max_rejected {
                break RelayOutcome::CutOff;
            }
        };
        connection.close().await;
        if outcome != RelayOutcome::LeaseLost && !self.flush(&mut batch, report).await? {
            return Ok(RelayOutcome::LeaseLost);
        }
        if outcome == RelayOutcome::CutOff {
            tracing::warn!(
                target: TARGET,
                url = %self.relay.url,
                rejected = report.counts.rejected.total(),
                max_rejected = config.max_rejected,
                "relay cut off for this cycle: too many rejected events"
            );
        }
        Ok(outcome)
    }

    /// One `REQ`, counted; a failure ends the walk with its outcome.
    async fn fetch(
        &self,
        connection: &mut RelayConnection,
        since: i64,
        until: i64,
        limit: usize,
        limits: Limits,
        report: &mut RelayReport,
    ) -> Result<Fetched, RelayOutcome> {
        match connection
            .fetch(
                &self.inner.filter,
                since,
                until,
                limit,
                limits,
                &self.cancel,
            )
            .await
        {
            Ok(fetched) => {
                let counts = &mut report.counts;
                counts.windows += 1;
                counts.received += fetched.received;
                counts.rejected.outside_window += fetched.outside_window;
                counts.rejected.filter_mismatch += fetched.filter_mismatch;
                counts.rejected.repeated += fetched.repeated;
                counts.rejected.malformed += fetched.malformed;
                if fetched.refused() > 0 {
                    tracing::debug!(
                        target: TARGET,
                        url = %self.relay.url,
                        since,
                        until,
                        refused = fetched.refused(),
                        "the relay served events that do not answer the request"
                    );
                }
                Ok(fetched)
            }
            Err(FetchError::Cancelled) => Err(RelayOutcome::Cancelled),
            Err(FetchError::TotalTimeout) => Err(RelayOutcome::TimeUp),
            Err(error) => {
                tracing::info!(
                    target: TARGET,
                    url = %self.relay.url,
                    since,
                    until,
                    error = %error,
                    "relay left for this cycle"
                );
                Err(RelayOutcome::Failed(error))
            }
        }
    }

    /// Checks ids and signatures here when the archive does not (event
    /// validation off), on the blocking threads.
    async fn validate(
        &self,
        events: Vec<Event>,
        rejected: &mut Rejections,
    ) -> anyhow::Result<Vec<Event>> {
        let checked = tokio::task::spawn_blocking(move || {
            events
                .into_iter()
                .map(|event| {
                    let check = validate_event(&event);
                    (event, check)
                })
                .collect::<Vec<_>>()
        })
        .await
        .context("validating events")?;
        let mut valid = Vec::with_capacity(checked.len());
        for (event, check) in checked {
            match check {
                Ok(()) => valid.push(event),
                Err(reason) => count_rejection(rejected, reason),
            }
        }
        Ok(valid)
    }

    /// Stores the batch, then moves the cursor to its position. Returns
    /// `false` when the lease was lost (the events are stored, the cursor
    /// is not moved).
    async fn flush(&self, batch: &mut Batch, report: &mut RelayReport) -> anyhow::Result<bool> {
        if !batch.items.is_empty() {
            let stored = self
                .brotr
                .insert_event_batch_seen(&batch.items)
                .await
                .with_context(|| {
                    format!("storing {} events of {}", batch.items.len(), self.relay.url)
                })?;
            let counts = &mut report.counts;
            counts.stored += stored.stored;
            counts.duplicates += stored.duplicates;
            counts.relations += stored.relations_stored;
            for rejected in &stored.rejected {
                count_rejection(&mut counts.rejected, rejected.reason);
            }
            batch.items.clear();
        }
        let Some(position) = batch.position.take() else {
            return Ok(true);
        };
        if report.cursor == Some(position) {
            return Ok(true);
        }
        let held = advance_cursor(
            &self.brotr,
            &self.inner.worker_id,
            self.relay.relay_id,
            &position,
            self.inner.filter.hash(),
        )
        .await
        .with_context(|| format!("advancing the cursor of {}", self.relay.url))?;
        if held {
            report.cursor = Some(position);
        } else {
            tracing::warn!(
                target: TARGET,
                url = %self.relay.url,
                "the relay's lease was taken by another worker: leaving it"
            );
        }
        Ok(held)
    }
}

fn count_rejection(rejected: &mut Rejections, reason: RejectReason) {
    match reason {
        RejectReason::InvalidId => rejected.invalid_id += 1,
        RejectReason::InvalidSignature => rejected.invalid_signature += 1,
        _ => rejected.out_of_range += 1,
    }
}
