//! The windows of one relay: walked with `REQ`s and paged while an answer
//! may have been cut short, or reconciled with NIP-77; pending ranges
//! retried.
//!
//! A relay may return fewer events to a `REQ` than its `limit` without
//! saying so, so an answer is taken as possibly cut short when it reaches
//! the `limit` or the most events the relay ever returned to one `REQ` (its
//! effective cap, learned and stored). Such a window is paged with `until`
//! at the oldest `created_at` returned (inclusive: the events of that
//! second already seen are told apart by id) until an answer brings nothing
//! new. NIP-01 has relays answer newest first, so each page continues where
//! the previous one stopped. An answer that is full and brings nothing new
//! means one second holds more events than the relay returns at once: that
//! second is recorded as pending and retried in later cycles (completely,
//! by NIP-77, where the relay speaks it), and the page goes on below it.

use std::collections::{HashSet, VecDeque};

use bigbrotr_brotr::RelayId;
use nostr::{Event, EventId, Filter, Timestamp};

use crate::connection::{FetchError, Fetched, ReconcileError};
use crate::filter::{created_at, Cursor};
use crate::report::RelayOutcome;
use crate::state::{
    add_pending, due_pending, insert_sightings, quarantine, relay_event_ids, settle_pending,
    PendingRange, PendingReason,
};
use crate::sync::{Session, Source};
use crate::worker::TARGET;

/// A window taking more pages than this from its first answer is shortened.
const MAX_PAGES: i64 = 8;

/// A reconciled window holding fewer events than this is doubled next
/// time, one holding more than ten times as many halved.
const RECONCILE_TARGET: usize = 10_000;

/// How one window ended.
enum Step {
    /// Complete; the next window is `grow` times as long (at least 1), or
    /// half as long when `shrink`.
    Done { grow: i64, shrink: bool },
    /// Too long for its density: walk windows of `length` up to `oldest`
    /// instead, then go on after `until`: the first answer, newest first,
    /// held every event of `oldest + 1..=until` already.
    Shorter {
        length: i64,
        oldest: i64,
        until: i64,
    },
    /// Too many events for one reconciliation: walk a window of this
    /// length from the same start instead (nothing of this one is kept).
    Retry(i64),
    /// The walk ends here.
    Stop(RelayOutcome),
}

impl Session<'_> {
    /// Walks `since..=end` window by window. In the forward walk
    /// (`resweep` false) the cursor moves to the end of each window once its
    /// events are stored; a re-sweep stores what it finds and moves nothing.
    pub(crate) async fn walk(
        &mut self,
        mut since: i64,
        end: i64,
        resweep: bool,
    ) -> anyhow::Result<RelayOutcome> {
        let config = &self.sync.inner.config;
        let source = if resweep {
            Source::Resweep
        } else {
            Source::Window
        };
        let mut length = i64::try_from(config.window.as_secs())
            .unwrap_or(i64::MAX)
            .max(1);
        // After a window too large to reconcile at once, windows grow to at
        // most this, doubled with each window that completes, so that an
        // empty stretch before dense data does not lead back to it at once.
        let mut ceiling: Option<i64> = None;
        // Stretches fetched already by the first answer of windows that were
        // shortened, innermost last: `(oldest, until)`, see `Step::Shorter`.
        let mut fetched_above: Vec<(i64, i64)> = Vec::new();
        loop {
            if since > end {
                return Ok(RelayOutcome::CaughtUp);
            }
            if let Some(outcome) = self.interrupted() {
                return Ok(outcome);
            }
            let mut until = since.saturating_add(length - 1).min(end);
            if let Some((oldest, _)) = fetched_above.last() {
                until = until.min(*oldest);
            }
            let step = if self.reconciling {
                self.reconcile_window(since, until, source).await?
            } else {
                self.req_window(since, until, source, length).await?
            };
            match step {
                Step::Done { grow, shrink } => {
                    self.report.counts.windows += 1;
                    // Not while a shortened window's stretch is pending: what
                    // its first answer fetched would be asked for again.
                    if fetched_above.is_empty() && self.cut_off() {
                        if !resweep {
                            self.batch.position = Some(Cursor::end_of(until));
                        }
                        return Ok(RelayOutcome::CutOff);
                    }
                    let mut until = until;
                    while let Some((oldest, above)) = fetched_above.last().copied() {
                        if until != oldest {
                            break;
                        }
                        until = above;
                        fetched_above.pop();
                    }
                    if !resweep {
                        // The cursor moves there with the next flush.
                        self.batch.position = Some(Cursor::end_of(until));
                    }
                    since = until.saturating_add(1);
                    if let Some(most) = ceiling {
                        ceiling = Some(most.saturating_mul(2));
                    }
                    if grow > 1 {
                        length = length.saturating_mul(grow).min(ceiling.unwrap_or(i64::MAX));
                    } else if shrink {
                        length = (length / 2).max(1);
                    }
                }
                Step::Retry(shorter) => {
                    length = shorter;
                    ceiling = Some(shorter);
                }
                Step::Shorter {
                    length: shorter,
                    oldest,
                    until,
                } => {
                    length = shorter;
                    fetched_above.push((oldest, until));
                }
                Step::Stop(outcome) => return Ok(outcome),
            }
        }
    }

    /// Retries the relay's pending ranges: by reconciliation where the relay
    /// speaks NIP-77, otherwise a single second with `second_limit` and a
    /// longer range by walking it again.
    pub(crate) async fn retry_pending(&mut self) -> anyhow::Result<RelayOutcome> {
        let sync = self.sync;
        let config = &sync.inner.config;
        let hash = sync.inner.filter.hash();
        let due = due_pending(
            &sync.brotr,
            sync.relay.relay_id,
            hash,
            config.pending_per_cycle,
        )
        .await?;
        for range in due {
            if let Some(outcome) = self.interrupted() {
                return Ok(outcome);
            }
            let added = self.report.counts.pending_added;
            let (complete, seen) = if self.reconciling {
                match self
                    .reconcile_window(range.since, range.until, Source::Window)
                    .await?
                {
                    Step::Stop(outcome) => return Ok(outcome),
                    // Too large to reconcile at once: still pending.
                    Step::Retry(_) => (false, 0),
                    _ => (self.report.counts.pending_added == added, 0),
                }
            } else if range.since == range.until {
                match self.retry_second(range.since).await? {
                    Ok(settled) => settled,
                    Err(outcome) => return Ok(outcome),
                }
            } else {
                match self
                    .req_window(range.since, range.until, Source::Window, i64::MAX)
                    .await?
                {
                    Step::Stop(outcome) => return Ok(outcome),
                    // The seconds still capped inside it are pending rows of
                    // their own now.
                    _ => (true, 0),
                }
            };
            if !self.flush().await? {
                return Ok(RelayOutcome::LeaseLost);
            }
            settle_pending(
                &sync.brotr,
                sync.relay.relay_id,
                hash,
                &range,
                complete,
                seen,
            )
            .await?;
            if complete {
                self.report.counts.pending_resolved += 1;
            }
        }
        Ok(RelayOutcome::CaughtUp)
    }

    /// One `REQ` for the single `second` with `second_limit`: complete when
    /// the answer is below that limit and differs from the relay's cap.
    async fn retry_second(
        &mut self,
        second: i64,
    ) -> anyhow::Result<Result<(bool, u32), RelayOutcome>> {
        let second_limit = self.sync.inner.config.second_limit.max(self.limit);
        let cap_before = self.state.effective_cap;
        let filter = self.sync.inner.filter.window(second, second, second_limit);
        let fetched = match self.request(&filter, second, second, second_limit).await? {
            Ok(fetched) => fetched,
            Err(outcome) => return Ok(Err(outcome)),
        };
        let received = fetched.received;
        if !self.store(fetched.events, Source::Window).await? {
            return Ok(Err(RelayOutcome::LeaseLost));
        }
        let complete = received < u64::try_from(second_limit).unwrap_or(u64::MAX)
            && cap_before.is_none_or(|cap| received != u64::from(cap));
        Ok(Ok((complete, u32::try_from(received).unwrap_or(u32::MAX))))
    }

    /// Fetches `since..=until` with `REQ`s, paging while an answer may have
    /// been cut short. `length` is the length of the window being walked,
    /// to tell when it is too long for its density.
    async fn req_window(
        &mut self,
        since: i64,
        until: i64,
        source: Source,
        length: i64,
    ) -> anyhow::Result<Step> {
        let mut page_until = until;
        // The ids already fetched of the second `page_until`.
        let mut boundary: HashSet<EventId> = HashSet::new();
        let mut pages: u64 = 0;
        loop {
            if pages > 0 {
                if let Some(outcome) = self.interrupted() {
                    return Ok(Step::Stop(outcome));
                }
                self.report.counts.pages += 1;
            }
            let filter = self.sync.inner.filter.window(since, page_until, self.limit);
            let fetched = match self.request(&filter, since, page_until, self.limit).await? {
                Ok(fetched) => fetched,
                Err(RelayOutcome::Failed(FetchError::MessageTooLarge(reason))) => {
                    // Find the second holding the message, skip it, walk
                    // again what lies above it, and go on below it.
                    let second = match self.skip_oversized(since, page_until, &reason).await? {
                        Ok(second) => second,
                        Err(outcome) => return Ok(Step::Stop(outcome)),
                    };
                    if second < page_until {
                        if let Step::Stop(outcome) =
                            Box::pin(self.req_window(second + 1, page_until, source, i64::MAX))
                                .await?
                        {
                            return Ok(Step::Stop(outcome));
                        }
                    }
                    if second <= since {
                        return Ok(Step::Done {
                            grow: 1,
                            shrink: false,
                        });
                    }
                    page_until = second - 1;
                    boundary.clear();
                    continue;
                }
                Err(outcome) => return Ok(Step::Stop(outcome)),
            };
            pages += 1;
            let received = fetched.received;
            let truncated = fetched.truncated;
            let full = truncated || self.may_be_cut_short(received);
            let cap_known = self.state.effective_cap.is_some();
            let mut oldest: Option<i64> = None;
            let mut new = Vec::with_capacity(fetched.events.len());
            for event in fetched.events {
                let at = created_at(&event);
                if at == page_until && boundary.contains(&event.id) {
                    continue;
                }
                oldest = Some(oldest.map_or(at, |oldest| oldest.min(at)));
                new.push(event);
            }
            if let Some(oldest) = oldest {
                if oldest < page_until {
                    boundary.clear();
                }
                boundary.extend(
                    new.iter()
                        .filter(|event| created_at(event) == oldest)
                        .map(|event| event.id),
                );
            }
            tracing::trace!(
                target: TARGET,
                since,
                page_until,
                received,
                new = new.len(),
                truncated,
                full,
                "page"
            );
            // Only an answer that brought something new tells how many the
            // relay returns at once: one holding nothing but the events
            // already seen of a second is short because nothing is left.
            if !truncated && !new.is_empty() {
                self.learn_cap(received);
            }
            if !self.store(new, source).await? {
                return Ok(Step::Stop(RelayOutcome::LeaseLost));
            }
            // Nothing new while the relay's cap is unknown: no answer could
            // have been cut short by it, the window is complete.
            let full = full && (oldest.is_some() || truncated || cap_known);
            if !full {
                let half = self.effective_limit() as u64 / 2;
                return Ok(Step::Done {
                    grow: growth(pages == 1 && received < half.max(1), received == 0),
                    shrink: pages as i64 > MAX_PAGES,
                });
            }
            match oldest {
                None => {
                    // A full answer with nothing new: the second holds more
                    // events than the relay returns at once.
                    self.record_pending(PendingRange {
                        since: page_until,
                        until: page_until,
                        reason: PendingReason::Capped,
                        events_seen: u32::try_from(boundary.len().max(1)).unwrap_or(u32::MAX),
                        attempts: 0,
                    })
                    .await?;
                    if page_until <= since {
                        return Ok(Step::Done {
                            grow: 1,
                            shrink: pages as i64 > MAX_PAGES,
                        });
                    }
                    page_until -= 1;
                    boundary.clear();
                }
                Some(oldest) => {
                    if pages == 1 && oldest > since {
                        // The first page covered `span` seconds: a window
                        // needing many more pages is shortened rather than
                        // held open (its cursor moves only when it ends).
                        let span = (until - oldest + 1).max(1);
                        if oldest - since > MAX_PAGES * span && length > 4 * span {
                            return Ok(Step::Shorter {
                                length: 4 * span,
                                oldest,
                                until,
                            });
                        }
                    }
                    page_until = oldest;
                }
            }
        }
    }

    /// Reconciles `since..=until` (NIP-77) against what the archive holds
    /// from this relay, records the sightings of events it holds from other
    /// relays, and fetches the rest by id. Falls back to `REQ`s when the
    /// relay does not reconcile.
    async fn reconcile_window(
        &mut self,
        since: i64,
        until: i64,
        source: Source,
    ) -> anyhow::Result<Step> {
        let sync = self.sync;
        let relay: RelayId = sync.relay.relay_id;
        // Memory stays bounded whatever the relay holds: a window with too
        // many events, on either side, is reconciled in smaller parts.
        let most = RECONCILE_TARGET * 10;
        let too_many = |count: usize| count > most && until > since;
        let shorter = ((until - since + 1) / 8).max(1);
        let local = relay_event_ids(
            &sync.brotr,
            relay,
            since,
            until,
            i64::try_from(most + 1).unwrap_or(i64::MAX),
        )
        .await?;
        if too_many(local.len()) {
            return Ok(Step::Retry(shorter));
        }
        let filter = sync
            .inner
            .filter
            .base()
            .clone()
            .since(timestamp(since))
            .until(timestamp(until));
        let need = match self
            .connection
            .reconcile(&filter, &local, self.limits, &sync.cancel)
            .await
        {
            Ok(need) => need,
            Err(ReconcileError::Unsupported(reason)) => {
                tracing::debug!(
                    target: TARGET,
                    url = %sync.relay.url,
                    since,
                    until,
                    reason = %reason,
                    "the relay does not reconcile: walking with REQs"
                );
                if !self.reconciled {
                    self.state.nip77 = Some(false);
                    self.state.nip77_checked_at = Some(self.now);
                    self.reconciling = false;
                }
                return self.req_window(since, until, source, i64::MAX).await;
            }
            Err(ReconcileError::Fetch(FetchError::MessageTooLarge(reason))) => {
                tracing::debug!(
                    target: TARGET,
                    url = %sync.relay.url,
                    since,
                    until,
                    reason = %reason,
                    "a reconciliation message was too large: walking with REQs"
                );
                if let Err(outcome) = self.reconnect().await {
                    return Ok(Step::Stop(outcome));
                }
                return self.req_window(since, until, source, i64::MAX).await;
            }
            Err(ReconcileError::Fetch(error)) => {
                return Ok(Step::Stop(self.failed(error, since, until)))
            }
        };
        if !self.reconciled {
            self.reconciled = true;
            self.state.nip77 = Some(true);
            self.state.nip77_checked_at = Some(self.now);
        }
        self.report.counts.reconciliations += 1;
        if too_many(need.len()) {
            return Ok(Step::Retry(shorter));
        }
        let found = local.len() + need.len();
        let seen_at = bigbrotr_utils::now_timestamp();
        let mut missing = Vec::with_capacity(need.len());
        for chunk in need.chunks(10_000) {
            let known: HashSet<EventId> = insert_sightings(&sync.brotr, relay, chunk, seen_at)
                .await?
                .into_iter()
                .collect();
            self.report.counts.sightings += known.len() as u64;
            missing.extend(chunk.iter().filter(|id| !known.contains(id)).copied());
        }
        let source = if source == Source::Window {
            Source::Reconcile
        } else {
            source
        };
        let unserved = match self.fetch_ids(&missing, since, until, source).await? {
            Ok(unserved) => unserved,
            Err(outcome) => return Ok(Step::Stop(outcome)),
        };
        if unserved > 0 {
            tracing::info!(
                target: TARGET,
                url = %sync.relay.url,
                since,
                until,
                unserved,
                "the relay listed events it did not serve: the range is pending"
            );
            self.record_pending(PendingRange {
                since,
                until,
                reason: PendingReason::Unserved,
                events_seen: u32::try_from(found - unserved).unwrap_or(u32::MAX),
                attempts: 0,
            })
            .await?;
        }
        Ok(Step::Done {
            grow: growth(found < RECONCILE_TARGET, found == 0),
            shrink: found > RECONCILE_TARGET * 10,
        })
    }

    /// Fetches `ids` by id, in chunks no larger than what the relay
    /// returns at once; the ids an answer left out are asked for again as
    /// long as answers bring something. A chunk whose answer breaks the
    /// size limit is halved until the event that does is found, recorded in
    /// `quarantine` and left out. Returns how many the relay did not serve.
    async fn fetch_ids(
        &mut self,
        ids: &[EventId],
        since: i64,
        until: i64,
        source: Source,
    ) -> anyhow::Result<Result<usize, RelayOutcome>> {
        let mut queue: VecDeque<EventId> = ids.iter().copied().collect();
        // Chunks to ask for as they are, ahead of the queue.
        let mut forced: Vec<Vec<EventId>> = Vec::new();
        let mut unserved = 0;
        while !queue.is_empty() || !forced.is_empty() {
            if let Some(outcome) = self.interrupted() {
                return Ok(Err(outcome));
            }
            let asked: Vec<EventId> = match forced.pop() {
                Some(chunk) => chunk,
                None => {
                    let size = self
                        .sync
                        .inner
                        .config
                        .nip77
                        .ids_per_request
                        .min(self.effective_limit())
                        .clamp(1, queue.len());
                    queue.drain(..size).collect()
                }
            };
            let wanted: HashSet<EventId> = asked.iter().copied().collect();
            let filter = self
                .sync
                .inner
                .filter
                .base()
                .clone()
                .ids(asked.iter().copied())
                .limit(asked.len());
            let fetched = match self
                .request_ids(&filter, Some(&wanted), since, until, asked.len())
                .await?
            {
                Ok(fetched) => fetched,
                Err(RelayOutcome::Failed(FetchError::MessageTooLarge(reason))) => {
                    if let Err(outcome) = self.reconnect().await {
                        return Ok(Err(outcome));
                    }
                    if let [id] = asked.as_slice() {
                        self.record_oversized(None, Some(id), None, &reason).await?;
                    } else {
                        let (low, high) = asked.split_at(asked.len() / 2);
                        forced.push(high.to_vec());
                        forced.push(low.to_vec());
                    }
                    continue;
                }
                Err(outcome) => return Ok(Err(outcome)),
            };
            if !fetched.truncated {
                self.learn_cap(fetched.received);
            }
            let got: HashSet<EventId> = fetched.events.iter().map(|event| event.id).collect();
            let refused: HashSet<EventId> =
                fetched.oversized.iter().map(|(id, _, _)| *id).collect();
            let missed = asked
                .iter()
                .filter(|id| !got.contains(id) && !refused.contains(id))
                .copied();
            if got.is_empty() && refused.is_empty() {
                unserved += missed.count();
            } else {
                for id in missed.rev() {
                    queue.push_front(id);
                }
            }
            if !self.store(fetched.events, source).await? {
                return Ok(Err(RelayOutcome::LeaseLost));
            }
        }
        Ok(Ok(unserved))
    }

    /// Finds the second of `since..=until` holding the message that broke
    /// the size limit (answers are newest first, so an answer with `limit`
    /// breaks exactly when it starts at or before that second), records it
    /// in `quarantine`, and, where the relay reconciles, fetches the other
    /// events of that second one by one. Returns the second.
    async fn skip_oversized(
        &mut self,
        since: i64,
        until: i64,
        reason: &str,
    ) -> anyhow::Result<Result<i64, RelayOutcome>> {
        if let Err(outcome) = self.reconnect().await {
            return Ok(Err(outcome));
        }
        // The latest start that still breaks: `low` breaks, `high` does not.
        let (mut low, mut high) = (since, until.saturating_add(1));
        while high - low > 1 {
            if let Some(outcome) = self.interrupted() {
                return Ok(Err(outcome));
            }
            let mid = low + (high - low) / 2;
            let filter = self.sync.inner.filter.window(mid, until, self.limit);
            match self.request(&filter, mid, until, self.limit).await? {
                Ok(fetched) => {
                    high = mid;
                    // Valid answers for `mid..=until`: kept, not fetched
                    // again when that stretch is walked.
                    if !self.store(fetched.events, Source::Window).await? {
                        return Ok(Err(RelayOutcome::LeaseLost));
                    }
                }
                Err(RelayOutcome::Failed(FetchError::MessageTooLarge(_))) => {
                    low = mid;
                    if let Err(outcome) = self.reconnect().await {
                        return Ok(Err(outcome));
                    }
                }
                Err(outcome) => return Ok(Err(outcome)),
            }
        }
        let second = low;
        tracing::info!(
            target: TARGET,
            url = %self.sync.relay.url,
            second,
            reason = %reason,
            "a message over the size limit: its second is skipped"
        );
        self.record_oversized(Some(second), None, None, reason)
            .await?;
        if self.reconciling {
            if let Step::Stop(outcome) =
                Box::pin(self.reconcile_window(second, second, Source::Window)).await?
            {
                return Ok(Err(outcome));
            }
        }
        Ok(Ok(second))
    }

    /// Records an event too large to store in `quarantine`, counted.
    async fn record_oversized(
        &mut self,
        second: Option<i64>,
        id: Option<&EventId>,
        size: Option<usize>,
        reason: &str,
    ) -> anyhow::Result<()> {
        let sync = self.sync;
        let why = if size.is_some() {
            "oversized".to_owned()
        } else {
            format!("message_too_large: {reason}")
        };
        quarantine(&sync.brotr, sync.relay.relay_id, second, id, size, &why).await?;
        self.report.counts.rejected.oversized += 1;
        Ok(())
    }

    /// Records a pending range, counted.
    async fn record_pending(&mut self, range: PendingRange) -> anyhow::Result<()> {
        let sync = self.sync;
        add_pending(
            &sync.brotr,
            sync.relay.relay_id,
            sync.inner.filter.hash(),
            &range,
        )
        .await?;
        self.report.counts.pending_added += 1;
        tracing::debug!(
            target: TARGET,
            url = %sync.relay.url,
            since = range.since,
            until = range.until,
            reason = range.reason.as_str(),
            events_seen = range.events_seen,
            "range recorded as pending"
        );
        Ok(())
    }

    /// One `REQ` for the window `since..=until`, counted.
    async fn request(
        &mut self,
        filter: &Filter,
        since: i64,
        until: i64,
        limit: usize,
    ) -> anyhow::Result<Result<Fetched, RelayOutcome>> {
        self.request_ids(filter, None, since, until, limit).await
    }

    /// One `REQ`, for the ids of `wanted` when given, of events created in
    /// `since..=until`, counted.
    async fn request_ids(
        &mut self,
        filter: &Filter,
        wanted: Option<&HashSet<EventId>>,
        since: i64,
        until: i64,
        limit: usize,
    ) -> anyhow::Result<Result<Fetched, RelayOutcome>> {
        let check_filter = &self.sync.inner.filter;
        let check = move |event: &Event| {
            if wanted.is_some_and(|wanted| !wanted.contains(&event.id)) {
                return Err(crate::filter::Mismatch::Filter);
            }
            check_filter.check(event, since, until)
        };
        let result = self
            .connection
            .request(filter, &check, limit, self.limits, &self.sync.cancel)
            .await;
        self.count(result, since, until).await
    }

    /// Counts what a request brought; a failure ends the walk with its
    /// outcome.
    async fn count(
        &mut self,
        result: Result<Fetched, FetchError>,
        since: i64,
        until: i64,
    ) -> anyhow::Result<Result<Fetched, RelayOutcome>> {
        match result {
            Ok(fetched) => {
                for (id, second, size) in &fetched.oversized {
                    self.record_oversized(Some(*second), Some(id), Some(*size), "")
                        .await?;
                }
                let counts = &mut self.report.counts;
                counts.received += fetched.received;
                counts.rejected.outside_window += fetched.outside_window;
                counts.rejected.filter_mismatch += fetched.filter_mismatch;
                counts.rejected.repeated += fetched.repeated;
                counts.rejected.malformed += fetched.malformed;
                counts.rejected.invalid_id += fetched.invalid_id;
                if fetched.refused() > 0 {
                    tracing::debug!(
                        target: TARGET,
                        url = %self.sync.relay.url,
                        since,
                        until,
                        refused = fetched.refused(),
                        "the relay served events that do not answer the request"
                    );
                }
                Ok(Ok(fetched))
            }
            Err(error) => Ok(Err(self.failed(error, since, until))),
        }
    }

    /// The outcome of a request that failed.
    fn failed(&self, error: FetchError, since: i64, until: i64) -> RelayOutcome {
        match error {
            FetchError::Cancelled => RelayOutcome::Cancelled,
            FetchError::TotalTimeout => RelayOutcome::TimeUp,
            // Handled by the caller, which reconnects and skips it.
            error @ FetchError::MessageTooLarge(_) => {
                tracing::debug!(
                    target: TARGET,
                    url = %self.sync.relay.url,
                    since,
                    until,
                    error = %error,
                    "a message over the size limit"
                );
                RelayOutcome::Failed(error)
            }
            error => {
                tracing::info!(
                    target: TARGET,
                    url = %self.sync.relay.url,
                    since,
                    until,
                    error = %error,
                    "relay left for this cycle"
                );
                RelayOutcome::Failed(error)
            }
        }
    }

    /// Whether an answer of `received` events may have been cut short: it
    /// reaches the `limit` or the most the relay ever returned at once (any
    /// answer, while that is not known yet).
    fn may_be_cut_short(&self, received: u64) -> bool {
        received >= self.limit as u64
            || match self.state.effective_cap {
                Some(cap) => received >= u64::from(cap),
                None => received > 0,
            }
    }

    /// Learns from an answer of `received` events.
    fn learn_cap(&mut self, received: u64) {
        if received == 0 {
            return;
        }
        let received = u32::try_from(received).unwrap_or(u32::MAX);
        self.state.effective_cap = Some(
            self.state
                .effective_cap
                .map_or(received, |cap| cap.max(received)),
        );
    }

    /// The most events one answer is expected to hold.
    fn effective_limit(&self) -> usize {
        match self.state.effective_cap {
            Some(cap) => self.limit.min(cap as usize).max(1),
            None => self.limit,
        }
    }
}

/// How much longer the next window is: eight times after an empty one
/// (long empty stretches are crossed in a few steps), twice after a sparse
/// one.
fn growth(sparse: bool, empty: bool) -> i64 {
    match (sparse, empty) {
        (_, true) => 8,
        (true, false) => 2,
        (false, false) => 1,
    }
}

fn timestamp(secs: i64) -> Timestamp {
    Timestamp::from_secs(u64::try_from(secs).unwrap_or(0))
}
