//! One pass over the relays: [`Synchronizer::run_cycle`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::Context as _;
use bigbrotr_brotr::{Brotr, Network, RelayId};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::leases::{claim_relays, release_relays, renew_leases, Claim};
use crate::report::{CycleReport, RelayReport};
use crate::sync::{LeaseClock, RelaySync};
use crate::worker::{Synchronizer, TARGET};

/// Both networks, in the order they are claimed.
const NETWORKS: [Network; 2] = [Network::Clearnet, Network::Tor];

/// A relay being synced by this worker.
struct Held {
    network: Network,
    cancel: CancellationToken,
}

impl Synchronizer {
    /// One pass over the relays: claims, at most `concurrency.clearnet` /
    /// `concurrency.tor` at a time, the relays to sync (those the monitor
    /// last found readable and those of `relays`, not leased to another
    /// worker, not synced since this cycle began; `.onion` ones only with a
    /// SOCKS5 proxy), syncs each from its cursor to `now - end_lag`, and
    /// releases it. Leases are renewed every third of `lease.duration`
    /// meanwhile; a relay whose lease is lost is left at once.
    ///
    /// When `cancel` fires, every relay stops at its next step, stores the
    /// windows it had completed, moves its cursor to them and is released;
    /// the report says `cancelled`.
    ///
    /// Fails when the database cannot be read or written; what was stored
    /// before stays stored, with cursors that never pass it.
    #[tracing::instrument(
        name = "synchronizer.run_cycle",
        target = "bigbrotr::synchronizer",
        skip_all,
        fields(worker = %self.worker_id()),
        err(level = "debug")
    )]
    pub async fn run_cycle(
        &self,
        brotr: &Brotr,
        cancel: &CancellationToken,
    ) -> anyhow::Result<CycleReport> {
        // Boxed: the state of a whole cycle is deep enough to exceed the
        // compiler's layout depth in the callers' own futures.
        Box::pin(self.cycle(brotr, cancel)).await
    }

    async fn cycle(
        &self,
        brotr: &Brotr,
        cancel: &CancellationToken,
    ) -> anyhow::Result<CycleReport> {
        let config = self.config();
        let worker = self.worker_id();
        let cycle_started_ms = now_ms();
        let extra = if config.relays.is_empty() {
            Vec::new()
        } else {
            brotr
                .insert_relay_batch(&config.relays, bigbrotr_utils::now_timestamp())
                .await
                .context("recording the configured relays")?
        };
        let networks: Vec<Network> = NETWORKS.into_iter().filter(|n| self.reaches(*n)).collect();
        let lease_seconds = config.lease.seconds();
        let lease = Arc::new(LeaseClock::new());
        let mut renewal = tokio::time::interval_at(
            Instant::now() + config.lease.duration / 3,
            config.lease.duration / 3,
        );
        renewal.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        let mut report = CycleReport::default();
        let mut running: JoinSet<(RelayId, anyhow::Result<RelayReport>)> = JoinSet::new();
        let mut held: HashMap<RelayId, Held> = HashMap::new();
        let mut done: Vec<RelayId> = Vec::new();
        let mut exhausted: HashSet<Network> = HashSet::new();
        let mut failure: Option<anyhow::Error> = None;
        let stop = cancel.child_token();

        loop {
            if !stop.is_cancelled() {
                if let Err(error) = self
                    .claim_more(
                        brotr,
                        &networks,
                        &extra,
                        cycle_started_ms,
                        &lease,
                        &mut exhausted,
                        &mut held,
                        &done,
                        &mut running,
                        &stop,
                    )
                    .await
                {
                    failure = Some(error);
                    stop.cancel();
                }
            }
            if running.is_empty() {
                break;
            }
            tokio::select! {
                biased;
                () = cancel.cancelled(), if !report.cancelled => {
                    report.cancelled = true;
                }
                _ = renewal.tick() => {
                    let relays: Vec<RelayId> = held.keys().copied().collect();
                    if relays.is_empty() {
                        continue;
                    }
                    let started = Instant::now();
                    match renew_leases(brotr, worker, &relays, lease_seconds).await {
                        Ok(renewed) => {
                            lease.renewed(started, config.lease.duration);
                            let renewed: HashSet<RelayId> = renewed.into_iter().collect();
                            for (relay_id, relay) in &held {
                                if !renewed.contains(relay_id) {
                                    tracing::warn!(
                                        target: TARGET,
                                        relay_id = relay_id.get(),
                                        "lease lost: the relay is left to the worker holding it"
                                    );
                                    relay.cancel.cancel();
                                }
                            }
                        }
                        // Not fatal: the relays stop on their own once the
                        // leases may have expired.
                        Err(error) => tracing::warn!(
                            target: TARGET,
                            error = %error,
                            "leases not renewed"
                        ),
                    }
                }
                joined = running.join_next() => {
                    let Some(joined) = joined else { continue };
                    let (relay_id, result) = match joined {
                        Ok(done) => done,
                        Err(error) => {
                            failure.get_or_insert_with(|| {
                                anyhow::Error::new(error).context("a relay sync panicked")
                            });
                            stop.cancel();
                            continue;
                        }
                    };
                    held.remove(&relay_id);
                    done.push(relay_id);
                    match result {
                        Ok(relay) => report.push(relay),
                        Err(error) => {
                            failure.get_or_insert(error);
                            stop.cancel();
                        }
                    }
                    if let Err(error) = release_relays(brotr, worker, &[relay_id]).await {
                        tracing::warn!(
                            target: TARGET,
                            relay_id = relay_id.get(),
                            error = %error,
                            "lease not released: it expires on its own"
                        );
                    }
                }
            }
        }
        report.cancelled |= cancel.is_cancelled();
        // Relays whose task panicked are still held.
        let left: Vec<RelayId> = held.keys().copied().collect();
        if !left.is_empty() {
            let _ = release_relays(brotr, worker, &left).await;
        }
        if let Some(error) = failure {
            return Err(error);
        }
        let totals = &report.totals;
        tracing::debug!(
            target: TARGET,
            relays = report.relays.len(),
            received = totals.received,
            stored = totals.stored,
            duplicates = totals.duplicates,
            relations = totals.relations,
            rejected = totals.rejected.total(),
            sightings = totals.sightings,
            requests = totals.requests,
            pending_added = totals.pending_added,
            pending_resolved = totals.pending_resolved,
            cut_off = report.cut_off(),
            failed = report.failed(),
            max_lag = ?report.max_lag(),
            cancelled = report.cancelled,
            "synchronization cycle done"
        );
        Ok(report)
    }

    /// Claims relays for the free places of each network and starts their
    /// sync. A network whose claim came back short has nothing more to
    /// offer in this cycle.
    #[allow(clippy::too_many_arguments)]
    async fn claim_more(
        &self,
        brotr: &Brotr,
        networks: &[Network],
        extra: &[RelayId],
        cycle_started_ms: i64,
        lease: &Arc<LeaseClock>,
        exhausted: &mut HashSet<Network>,
        held: &mut HashMap<RelayId, Held>,
        done: &[RelayId],
        running: &mut JoinSet<(RelayId, anyhow::Result<RelayReport>)>,
        stop: &CancellationToken,
    ) -> anyhow::Result<()> {
        let config = self.config();
        for &network in networks {
            if exhausted.contains(&network) {
                continue;
            }
            let limit = match network {
                Network::Clearnet => config.concurrency.clearnet,
                Network::Tor => config.concurrency.tor,
            };
            let busy = held.values().filter(|h| h.network == network).count();
            let free = limit.saturating_sub(busy);
            if free == 0 {
                continue;
            }
            let exclude: Vec<RelayId> = done.iter().chain(held.keys()).copied().collect();
            // The clock follows the oldest lease: a claim sets it only when
            // no older lease is held (renewals move it for all of them).
            let none_held = held.is_empty();
            let started = Instant::now();
            let claimed = claim_relays(
                brotr,
                &Claim {
                    worker: self.worker_id(),
                    networks: &[network],
                    extra,
                    exclude: &exclude,
                    synced_before_ms: cycle_started_ms,
                    lease_seconds: config.lease.seconds(),
                    limit: free,
                },
            )
            .await
            .with_context(|| format!("claiming {network} relays to sync"))?;
            if claimed.len() < free {
                exhausted.insert(network);
            }
            if claimed.is_empty() {
                continue;
            }
            if none_held {
                lease.renewed(started, config.lease.duration);
            }
            for relay in claimed {
                let relay_id = relay.relay_id;
                let cancel = stop.child_token();
                held.insert(
                    relay_id,
                    Held {
                        network,
                        cancel: cancel.clone(),
                    },
                );
                let sync = RelaySync {
                    inner: Arc::clone(&self.inner),
                    brotr: brotr.clone(),
                    relay,
                    cancel,
                    lease: Arc::clone(lease),
                };
                running.spawn(async move { (relay_id, sync.run().await) });
            }
        }
        Ok(())
    }
}

/// The time in Unix milliseconds, as `sync_release_relays` records it.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}
