//! The sync of one relay: its windows walked from its cursor (paged while
//! an answer may have been cut short, or reconciled with NIP-77), its
//! pending ranges retried, the period behind its cursor re-swept now and
//! then, its events stored in batches, and the cursor advanced after each
//! commit. The window logic itself is in `walk`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use bigbrotr_brotr::{validate_event, Brotr, Network, RejectReason};
use nostr::Event;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::connection::{Auth, FetchError, Limits, RelayConnection};
use crate::filter::{created_at, sort_events, Cursor};
use crate::leases::{advance_cursor, ClaimedRelay};
use crate::report::{Rejections, RelayOutcome, RelayReport, SyncCounts};
use crate::state::{quarantine, relay_state, save_relay_state, RelayState};
use crate::worker::{kib, Inner, TARGET};

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

/// How events were found, for the counts of what each way archives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// Windows walked with `REQ`s, pending ranges retried.
    Window,
    /// Ids a reconciliation found missing.
    Reconcile,
    /// The period behind the cursor, walked again.
    Resweep,
}

/// Events waiting to be stored, and the position they take the cursor to.
pub(crate) struct Batch {
    pub(crate) items: Vec<(Event, bigbrotr_brotr::RelayId, i64)>,
    pub(crate) source: Source,
    pub(crate) position: Option<Cursor>,
    /// About how many bytes the events take.
    pub(crate) bytes: usize,
    /// The share of the bytes all relays may hold that the events take.
    pub(crate) held: Option<OwnedSemaphorePermit>,
}

/// The sync of one claimed relay.
pub(crate) struct RelaySync {
    pub(crate) inner: Arc<Inner>,
    pub(crate) brotr: Brotr,
    pub(crate) relay: ClaimedRelay,
    pub(crate) cancel: CancellationToken,
    pub(crate) lease: Arc<LeaseClock>,
}

/// The state of one relay's sync while its connection is open.
pub(crate) struct Session<'a> {
    pub(crate) sync: &'a RelaySync,
    pub(crate) connection: RelayConnection,
    pub(crate) batch: Batch,
    pub(crate) report: RelayReport,
    pub(crate) state: RelayState,
    /// The `limit` of a `REQ`.
    pub(crate) limit: usize,
    pub(crate) limits: Limits,
    pub(crate) lease_margin: Duration,
    /// Events of the first second covered by an old cursor's event id.
    pub(crate) skip: Option<Cursor>,
    /// Whether windows are reconciled (NIP-77) rather than walked.
    pub(crate) reconciling: bool,
    /// Whether a reconciliation has worked on this connection.
    pub(crate) reconciled: bool,
    /// When the sync began (Unix seconds).
    pub(crate) now: i64,
}

impl RelaySync {
    /// Syncs the relay until it is caught up, its time runs out, it fails or
    /// misbehaves, its lease is lost or the cycle is cancelled; what was
    /// complete by then is stored. Fails only when the database does.
    pub(crate) async fn run(self) -> anyhow::Result<RelayReport> {
        let config = &self.inner.config;
        let started = Instant::now();
        let now = bigbrotr_utils::now_timestamp();
        let end = now.saturating_sub(i64::try_from(config.end_lag.as_secs()).unwrap_or(i64::MAX));
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
        let report = RelayReport {
            relay_id: self.relay.relay_id,
            url: self.relay.url.clone(),
            network: self.relay.network,
            counts: SyncCounts::default(),
            cursor,
            lag: None,
            outcome: RelayOutcome::CaughtUp,
        };
        let mut state = relay_state(&self.brotr, self.relay.relay_id)
            .await
            .with_context(|| format!("reading the sync state of {}", self.relay.url))?;
        let mut since = config.start_time;
        let mut skip = None;
        if let Some(cursor) = cursor {
            if cursor.next_second() >= since {
                since = cursor.next_second();
                skip = cursor.event_id.map(|_| cursor);
            }
        }
        if cursor.is_none() {
            // A first walk covers the lookback period itself.
            state.resweep_at = Some(now);
        }
        let deadline = started + config.timeouts.total;
        let (mut report, outcome) = match self.open(report, state, skip, now, deadline).await {
            Ok(mut session) => {
                let outcome = session.sync(since, end).await?;
                let (report, learned, outcome) = session.finish(outcome).await?;
                state = learned;
                (report, outcome)
            }
            Err((report, outcome)) => (report, outcome),
        };
        if let RelayOutcome::Failed(FetchError::AuthRefused(_)) = &outcome {
            state.auth_refused_at = Some(now);
        }
        if outcome != RelayOutcome::LeaseLost {
            save_relay_state(
                &self.brotr,
                &self.inner.worker_id,
                self.relay.relay_id,
                &state,
            )
            .await
            .with_context(|| format!("recording the sync state of {}", self.relay.url))?;
        }
        report.outcome = outcome;
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
            sightings = counts.sightings,
            rejected = counts.rejected.total(),
            requests = counts.requests,
            windows = counts.windows,
            pages = counts.pages,
            reconciliations = counts.reconciliations,
            pending_added = counts.pending_added,
            pending_resolved = counts.pending_resolved,
            resweeps = counts.resweeps,
            cap = ?state.effective_cap,
            nip77 = ?state.nip77,
            lag = ?report.lag,
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "relay synced"
        );
        Ok(report)
    }

    /// A connection to the relay: `.onion` relays through the SOCKS5 proxy,
    /// the others through the egress policy.
    async fn connect(&self, auth: Option<Auth>) -> Result<RelayConnection, FetchError> {
        let proxy = match self.relay.network {
            Network::Clearnet => None,
            Network::Tor => Some(self.inner.proxy().await.map_err(FetchError::Connect)?),
        };
        RelayConnection::open(
            &self.relay.url,
            proxy,
            &self.inner.egress,
            self.inner.connect_timeout,
            self.inner.wire(),
            auth,
        )
        .await
    }

    /// Opens the connection: a session, or the outcome of a relay that
    /// could not be reached.
    async fn open(
        &self,
        report: RelayReport,
        state: RelayState,
        skip: Option<Cursor>,
        now: i64,
        deadline: Instant,
    ) -> Result<Session<'_>, (RelayReport, RelayOutcome)> {
        let config = &self.inner.config;
        let refused_recently = state.auth_refused_at.is_some_and(|at| {
            now.saturating_sub(at) < i64::try_from(config.auth.retry_after.as_secs()).unwrap_or(0)
        });
        let auth = config.auth.enabled.then(|| Auth {
            keys: Arc::clone(&self.inner.keys),
            allowed: !refused_recently,
        });
        let connection = match self.connect(auth).await {
            Ok(connection) => connection,
            Err(error) => return Err((report, RelayOutcome::Failed(error))),
        };
        let limit = match self.relay.max_limit {
            Some(max) if max > 0 => config.limit.min(usize::try_from(max).unwrap_or(usize::MAX)),
            _ => config.limit,
        };
        let recheck = i64::try_from(config.nip77.recheck.as_secs()).unwrap_or(i64::MAX);
        let probe_due = state
            .nip77_checked_at
            .is_none_or(|at| now.saturating_sub(at) >= recheck);
        let reconciling = config.nip77.enabled && (state.nip77 == Some(true) || probe_due);
        Ok(Session {
            sync: self,
            connection,
            batch: Batch {
                items: Vec::with_capacity(config.batch_size.min(10_000)),
                source: Source::Window,
                position: None,
                bytes: 0,
                held: None,
            },
            report,
            state,
            limit,
            limits: Limits {
                request: config.timeouts.request,
                idle: config.timeouts.idle,
                deadline,
            },
            lease_margin: config.timeouts.request.min(config.lease.duration / 3),
            skip,
            reconciling,
            reconciled: false,
            now,
        })
    }
}

impl Session<'_> {
    /// The forward walk from `since` to `end`, then the pending ranges,
    /// then the re-sweep when one is due.
    async fn sync(&mut self, since: i64, end: i64) -> anyhow::Result<RelayOutcome> {
        let config = &self.sync.inner.config;
        let walked_from = since;
        let mut outcome = if since <= end {
            self.walk(since, end, false).await?
        } else {
            RelayOutcome::CaughtUp
        };
        if outcome == RelayOutcome::CaughtUp {
            outcome = self.retry_pending().await?;
        }
        let lookback = i64::try_from(config.resweep.lookback.as_secs()).unwrap_or(i64::MAX);
        let interval = i64::try_from(config.resweep.interval.as_secs()).unwrap_or(i64::MAX);
        let due = lookback > 0
            && self
                .state
                .resweep_at
                .is_none_or(|at| self.now.saturating_sub(at) >= interval);
        if outcome == RelayOutcome::CaughtUp && due {
            if let Some(cursor) = self.report.cursor {
                // The last second archived whole, and the part of the
                // lookback this cycle's forward walk did not just cover.
                let to = cursor.next_second().saturating_sub(1).min(walked_from - 1);
                let from = cursor
                    .next_second()
                    .saturating_sub(lookback)
                    .max(config.start_time);
                if from <= to {
                    if !self.flush_to(Source::Resweep).await? {
                        return Ok(RelayOutcome::LeaseLost);
                    }
                    outcome = self.walk(from, to, true).await?;
                    if outcome == RelayOutcome::CaughtUp {
                        self.report.counts.resweeps += 1;
                    }
                }
                if outcome == RelayOutcome::CaughtUp {
                    self.state.resweep_at = Some(self.now);
                }
            }
        }
        Ok(outcome)
    }

    /// Stores what is left of the batch and closes the connection; hands
    /// back the report, what was learned of the relay, and the outcome.
    async fn finish(
        mut self,
        mut outcome: RelayOutcome,
    ) -> anyhow::Result<(RelayReport, RelayState, RelayOutcome)> {
        if outcome != RelayOutcome::LeaseLost && !self.flush().await? {
            outcome = RelayOutcome::LeaseLost;
        }
        if self.connection.auth_refused {
            self.state.auth_refused_at = Some(self.now);
        }
        self.report.counts.requests += self.connection.requests;
        self.report.counts.bytes_received += self.connection.bytes_received;
        if outcome == RelayOutcome::CutOff {
            tracing::warn!(
                target: TARGET,
                url = %self.sync.relay.url,
                rejected = self.report.counts.rejected.total(),
                max_rejected = self.sync.inner.config.max_rejected,
                "relay cut off for this cycle: too many rejected events"
            );
        }
        let Session {
            connection,
            report,
            state,
            ..
        } = self;
        connection.close().await;
        Ok((report, state, outcome))
    }

    /// Whether the sync must stop before its next step, and why.
    pub(crate) fn interrupted(&self) -> Option<RelayOutcome> {
        if self.sync.cancel.is_cancelled() {
            return Some(RelayOutcome::Cancelled);
        }
        if !self.sync.lease.valid(self.lease_margin) {
            return Some(RelayOutcome::LeaseLost);
        }
        None
    }

    /// Whether the relay has served more rejected events than allowed in
    /// this cycle: checked between windows only, so that a relay mixing
    /// garbage with its events is archived completely, just more slowly.
    pub(crate) fn cut_off(&self) -> bool {
        self.report.counts.rejected.total() > self.sync.inner.config.max_rejected
    }

    /// Opens a new connection in place of one that broke (after a message
    /// over the size limit, say).
    pub(crate) async fn reconnect(&mut self) -> Result<(), RelayOutcome> {
        let connection = self
            .sync
            .connect(self.connection.auth())
            .await
            .map_err(RelayOutcome::Failed)?;
        let old = std::mem::replace(&mut self.connection, connection);
        self.report.counts.requests += old.requests;
        self.report.counts.bytes_received += old.bytes_received;
        if old.auth_refused {
            self.state.auth_refused_at = Some(self.now);
        }
        old.close().await;
        Ok(())
    }

    /// Stores `events` found by `source`: checked here when the archive does
    /// not check them, those an old cursor covers left out, in cursor order.
    /// Returns `false` when the lease was lost.
    pub(crate) async fn store(
        &mut self,
        mut events: Vec<Event>,
        source: Source,
    ) -> anyhow::Result<bool> {
        if events.is_empty() {
            return Ok(true);
        }
        if let Some(skip) = self.skip {
            events.retain(|event| !skip.covers(created_at(event), &event.id));
        }
        if !self.sync.brotr.config().enable_event_validation {
            events = validate(events, &mut self.report.counts.rejected).await?;
        }
        if !self.flush_to(source).await? {
            return Ok(false);
        }
        sort_events(&mut events);
        let seen_at = bigbrotr_utils::now_timestamp();
        let config = &self.sync.inner.config;
        let (batch_size, batch_bytes) = (config.batch_size, config.sizes.batch_bytes);
        let total = kib(config.sizes.held_bytes);
        for event in events {
            let size = approx_size(&event);
            let need = u32::try_from(kib(size).clamp(1, total)).unwrap_or(u32::MAX);
            let held = Arc::clone(&self.sync.inner.held);
            let permit = match held.clone().try_acquire_many_owned(need) {
                Ok(permit) => permit,
                Err(_) => {
                    // Every relay's batches together are at the bound: store
                    // this one's (so that no relay waits while holding some)
                    // and wait for room.
                    if !self.flush().await? {
                        return Ok(false);
                    }
                    held.acquire_many_owned(need)
                        .await
                        .context("waiting for room for events")?
                }
            };
            match &mut self.batch.held {
                Some(held) => held.merge(permit),
                None => self.batch.held = Some(permit),
            }
            self.batch.bytes += size;
            self.batch
                .items
                .push((event, self.sync.relay.relay_id, seen_at));
            if (self.batch.items.len() >= batch_size || self.batch.bytes >= batch_bytes)
                && !self.flush().await?
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Flushes the batch when its events were found another way than
    /// `source`, so that each way is counted apart.
    async fn flush_to(&mut self, source: Source) -> anyhow::Result<bool> {
        if self.batch.source != source {
            if !self.flush().await? {
                return Ok(false);
            }
            self.batch.source = source;
        }
        Ok(true)
    }

    /// Stores the batch, then moves the cursor to its position. Returns
    /// `false` when the lease was lost (the events are stored, the cursor
    /// is not moved).
    pub(crate) async fn flush(&mut self) -> anyhow::Result<bool> {
        let sync = self.sync;
        if !self.batch.items.is_empty() {
            let items = std::mem::take(&mut self.batch.items);
            self.store_isolating(&items).await?;
            self.batch.bytes = 0;
            self.batch.held = None;
            let mut items = items;
            items.clear();
            self.batch.items = items;
        }
        let Some(position) = self.batch.position.take() else {
            return Ok(true);
        };
        if self.report.cursor == Some(position) {
            return Ok(true);
        }
        let held = advance_cursor(
            &sync.brotr,
            &sync.inner.worker_id,
            sync.relay.relay_id,
            &position,
            sync.inner.filter.hash(),
        )
        .await
        .with_context(|| format!("advancing the cursor of {}", sync.relay.url))?;
        if held {
            self.report.cursor = Some(position);
        } else {
            tracing::warn!(
                target: TARGET,
                url = %sync.relay.url,
                "the relay's lease was taken by another worker: leaving it"
            );
        }
        Ok(held)
    }
}

impl Session<'_> {
    /// Stores `items`. When the archive refuses them for a reason other
    /// than being unavailable, the batch is split to find the events it
    /// refuses: the others are stored, those are recorded in `quarantine`,
    /// and the sync goes on. Fails only when the database is unavailable.
    async fn store_isolating(
        &mut self,
        items: &[(Event, bigbrotr_brotr::RelayId, i64)],
    ) -> anyhow::Result<()> {
        let sync = self.sync;
        let error = match sync.brotr.insert_event_batch_seen(items).await {
            Ok(stored) => {
                let counts = &mut self.report.counts;
                counts.stored += stored.stored;
                match self.batch.source {
                    Source::Window => {}
                    Source::Reconcile => counts.stored_by_reconcile += stored.stored,
                    Source::Resweep => counts.stored_by_resweep += stored.stored,
                }
                counts.duplicates += stored.duplicates;
                counts.relations += stored.relations_stored;
                for rejected in &stored.rejected {
                    count_rejection(&mut counts.rejected, rejected.reason);
                }
                return Ok(());
            }
            Err(error) if unavailable(&error) => {
                return Err(error).with_context(|| {
                    format!("storing {} events of {}", items.len(), sync.relay.url)
                })
            }
            Err(error) => error,
        };
        if let [(event, _, _)] = items {
            let reason = format!("refused: {}", ErrorChain(&error));
            tracing::warn!(
                target: TARGET,
                url = %sync.relay.url,
                event_id = %event.id,
                reason = %reason,
                "the archive refused an event: quarantined"
            );
            quarantine(
                &sync.brotr,
                sync.relay.relay_id,
                Some(created_at(event)),
                Some(&event.id),
                Some(approx_size(event)),
                &reason,
            )
            .await?;
            self.report.counts.quarantined += 1;
            return Ok(());
        }
        let (first, second) = items.split_at(items.len() / 2);
        Box::pin(self.store_isolating(first)).await?;
        Box::pin(self.store_isolating(second)).await
    }
}

/// Whether storing failed because the database cannot be reached or is
/// overloaded, rather than because of what was stored.
fn unavailable(error: &bigbrotr_brotr::Error) -> bool {
    match error {
        // A chunk that outlived the insert timeout: too large, not a sign
        // of an unreachable database.
        bigbrotr_brotr::Error::Timeout { .. } => false,
        bigbrotr_brotr::Error::Database { source, .. } => match source.code() {
            // Connection, resources, operator intervention (but a
            // cancelled statement), system errors.
            Some(code) => {
                let code = code.code();
                code != "57014" && ["08", "53", "57", "58", "XX"].contains(&&code[..2])
            }
            None => true,
        },
        _ => true,
    }
}

/// An error with its causes, on one line.
struct ErrorChain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// About how many bytes `event` takes as JSON: enough to bound memory
/// without serializing it.
pub(crate) fn approx_size(event: &Event) -> usize {
    let tags: usize = event
        .tags
        .iter()
        .map(|tag| {
            tag.as_slice()
                .iter()
                .map(|value| value.len() + 3)
                .sum::<usize>()
                + 2
        })
        .sum();
    250 + event.content.len() + tags
}

/// Checks ids and signatures here when the archive does not (event
/// validation off), on the blocking threads.
async fn validate(events: Vec<Event>, rejected: &mut Rejections) -> anyhow::Result<Vec<Event>> {
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

fn count_rejection(rejected: &mut Rejections, reason: RejectReason) {
    match reason {
        RejectReason::InvalidId => rejected.invalid_id += 1,
        RejectReason::InvalidSignature => rejected.invalid_signature += 1,
        _ => rejected.out_of_range += 1,
    }
}
