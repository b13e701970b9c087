//! Events archived after a subscription's `EOSE`: one task reads them from
//! the archive for every connection ([`LiveFeed`]), one query every
//! `relay.live_poll_interval` while some subscription waits, and hands them
//! to the connections through a bounded broadcast channel.
//!
//! The cost is bounded whatever the number of subscriptions: one query per
//! interval of at most `relay.live_batch_size` sightings, and a channel of
//! [`CHANNEL_BATCHES`] batches that no connection can grow. A connection
//! that falls that far behind is told (`CLOSED`) rather than given a gap.
//!
//! Nothing is missed: a subscription is counted before its stored events
//! are read, so every event committed after that read is read here, in the
//! commit-safe order of `relay_live_page` (see `012_relay.sql`). An event
//! committed just before may be sent twice, once before `EOSE` and once
//! after; clients drop duplicates by id.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bigbrotr_pool::ConnectionPool;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::query::LiveEvent;
pub(crate) use crate::reads::live_start;
use crate::reads::{live_page, LivePosition};
use crate::TARGET;

/// Batches the channel holds for the slowest connection.
pub(crate) const CHANNEL_BATCHES: usize = 64;

/// One query's new events.
pub(crate) type LiveBatch = Arc<[LiveEvent]>;

/// The feed of new events, shared by every connection.
#[derive(Debug, Clone)]
pub(crate) struct LiveFeed {
    sender: broadcast::Sender<LiveBatch>,
    waiting: Arc<AtomicUsize>,
}

impl LiveFeed {
    pub(crate) fn new() -> Self {
        Self {
            sender: broadcast::channel(CHANNEL_BATCHES).0,
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A receiver of the batches sent from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<LiveBatch> {
        self.sender.subscribe()
    }

    /// Counts one subscription waiting for new events until the guard is
    /// dropped.
    pub(crate) fn waiting(&self) -> Waiting {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        Waiting(Arc::clone(&self.waiting))
    }

    /// Subscriptions waiting for new events.
    pub(crate) fn waiting_count(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Reads new events after `start` (from [`live_start`], taken before
    /// any connection is served) until `cancel` fires. A failed query is
    /// logged and tried again at the next interval, from the same position.
    pub(crate) async fn run(
        self,
        pool: ConnectionPool,
        start: LivePosition,
        interval: Duration,
        batch_size: u32,
        cancel: CancellationToken,
    ) {
        let batch = i32::try_from(batch_size).unwrap_or(i32::MAX);
        let mut position = start;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
            if let Err(error) = self.poll(&pool, &mut position, batch, &cancel).await {
                tracing::warn!(target: TARGET, error = %error, "could not read new events");
            }
        }
    }

    /// One round: skip to the horizon while nobody waits, else read pages
    /// until one is not full.
    async fn poll(
        &self,
        pool: &ConnectionPool,
        position: &mut LivePosition,
        batch: i32,
        cancel: &CancellationToken,
    ) -> crate::Result<()> {
        if self.waiting_count() == 0 {
            let horizon = live_start(pool).await?;
            // Asked after the horizon was taken: a subscription counted
            // before then may have read its stored events before some event
            // below the horizon committed, so the position stays. One
            // counted after reads every event below the horizon already.
            if self.waiting_count() == 0 {
                *position = horizon;
                return Ok(());
            }
        }
        loop {
            let (events, last, rows) = live_page(pool, position, batch).await?;
            if !events.is_empty() {
                // No receiver: every subscription closed meanwhile.
                let _ = self.sender.send(events.into());
            }
            if let Some(last) = last {
                *position = last;
            }
            if rows < usize::try_from(batch).unwrap_or(usize::MAX) || cancel.is_cancelled() {
                return Ok(());
            }
        }
    }
}

/// One subscription waiting for new events (see [`LiveFeed::waiting`]).
#[derive(Debug)]
pub(crate) struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
