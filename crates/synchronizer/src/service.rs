//! [`SynchronizerService`]: the synchronizer as a service of the runtime,
//! run with `bigbrotr run synchronizer`.

use anyhow::Context as _;
use bigbrotr_service_runtime::{service_keys, Counter, Gauge, LoopService, ServiceContext};
use tokio_util::sync::CancellationToken;

use crate::config::SynchronizerFile;
use crate::report::{CycleReport, RelayOutcome, SyncCounts};
use crate::state::{nip77_relay_count, pending_count};
use crate::worker::Synchronizer;

const TARGET: &str = "bigbrotr::synchronizer";

/// A counter and the figure of a cycle's totals it adds up.
type CountedBy = (Counter, fn(&SyncCounts) -> u64);

/// The synchronizer service: each iteration is one
/// [`Synchronizer::run_cycle`] over the relays it can claim.
///
/// Its metrics, labelled with the service: `bigbrotr_synchronizer_events_received_total`,
/// `_events_stored_total`, `_events_stored_by_total` (with `way`: `window`,
/// `reconcile` or `resweep`), `_events_duplicate_total`,
/// `_relations_stored_total`, `_sightings_total` (provenance recorded by
/// reconciliation without a download), `_events_rejected_total` (with
/// `reason`), `_requests_total` (`REQ`s sent), `_received_bytes_total`,
/// `_windows_total`,
/// `_pages_total`, `_reconciliations_total`, `_resweeps_total`,
/// `_pending_added_total`, `_pending_resolved_total`, `_relays_total` (with
/// `outcome`), `_events_quarantined_total`, and the gauges
/// `_pending_ranges` (ranges waiting for a retry, all relays),
/// `_nip77_relays` (relays known to reconcile), `_max_lag_seconds` (the
/// most lagging relay of the last cycle) and `_lagging_relays` (relays of
/// the last cycle more than an hour behind). No series is labelled with a
/// relay: a stranger's URLs cannot grow the label sets. `/status` shows `pending_ranges` and `nip77_relays`
/// too.
#[derive(Debug)]
pub struct SynchronizerService {
    synchronizer: Synchronizer,
    counters: Vec<CountedBy>,
    pending: Gauge,
    nip77: Gauge,
    max_lag: Gauge,
    lagging: Gauge,
}

impl SynchronizerService {
    /// The synchronizer it runs.
    #[must_use]
    pub fn synchronizer(&self) -> &Synchronizer {
        &self.synchronizer
    }

    fn record(&self, ctx: &ServiceContext<SynchronizerFile>, report: &CycleReport) {
        let totals = &report.totals;
        for (counter, value) in &self.counters {
            counter.add(value(totals));
        }
        let rejected = &totals.rejected;
        for (reason, count) in [
            ("invalid_id", rejected.invalid_id),
            ("invalid_signature", rejected.invalid_signature),
            ("out_of_range", rejected.out_of_range),
            ("outside_window", rejected.outside_window),
            ("filter_mismatch", rejected.filter_mismatch),
            ("repeated", rejected.repeated),
            ("malformed", rejected.malformed),
            ("oversized", rejected.oversized),
        ] {
            if count > 0 {
                ctx.metrics()
                    .counter(
                        "synchronizer_events_rejected_total",
                        "Events refused, by reason.",
                        &[("reason", reason)],
                    )
                    .add(count);
            }
        }
        for relay in &report.relays {
            let outcome = match relay.outcome {
                RelayOutcome::CaughtUp => "caught_up",
                RelayOutcome::TimeUp => "time_up",
                RelayOutcome::Cancelled => "cancelled",
                RelayOutcome::LeaseLost => "lease_lost",
                RelayOutcome::CutOff => "cut_off",
                RelayOutcome::Failed(_) => "failed",
            };
            ctx.metrics()
                .counter(
                    "synchronizer_relays_total",
                    "Relay syncs ended, by outcome.",
                    &[("outcome", outcome)],
                )
                .inc();
        }
        if let Some(lag) = report.max_lag() {
            self.max_lag.set(lag as f64);
        }
        let lagging = report
            .relays
            .iter()
            .filter(|relay| relay.lag.is_some_and(|lag| lag > 3_600))
            .count();
        self.lagging.set(lagging as f64);
    }

    /// Reads the pending ranges and the NIP-77 relays from the archive, for
    /// `/metrics` and `/status`.
    async fn record_state(&self, ctx: &ServiceContext<SynchronizerFile>) -> anyhow::Result<()> {
        let pending = pending_count(ctx.brotr()).await?;
        let nip77 = nip77_relay_count(ctx.brotr()).await?;
        self.pending.set(pending as f64);
        self.nip77.set(nip77 as f64);
        let status = ctx.status_cell();
        status.set_detail("pending_ranges", i64::try_from(pending).unwrap_or(i64::MAX));
        status.set_detail("nip77_relays", i64::try_from(nip77).unwrap_or(i64::MAX));
        Ok(())
    }
}

impl LoopService for SynchronizerService {
    const NAME: &'static str = "synchronizer";
    type Config = SynchronizerFile;

    fn build(ctx: &ServiceContext<SynchronizerFile>) -> anyhow::Result<Self> {
        let config = ctx.config();
        let mut synchronizer = Synchronizer::new(&config.synchronizer, &config.nostr)?
            .with_egress(ctx.egress().clone());
        if config.synchronizer.auth.enabled {
            let keys = service_keys(ctx.env(), &config.synchronizer.auth.keys_env, ctx.name())
                .context("reading the synchronizer's key")?;
            synchronizer = synchronizer.with_keys(keys);
        }
        let metrics = ctx.metrics();
        let counter = |name: &str, help: &str| metrics.counter(name, help, &[]);
        let by = |way: &str| {
            metrics.counter(
                "synchronizer_events_stored_by_total",
                "Events newly archived, by the way they were found.",
                &[("way", way)],
            )
        };
        let counters: Vec<CountedBy> = vec![
            (
                counter("synchronizer_events_received_total", "Events received from relays."),
                |c| c.received,
            ),
            (
                counter("synchronizer_events_stored_total", "Events newly archived."),
                |c| c.stored,
            ),
            (by("window"), |c| {
                c.stored - c.stored_by_resweep - c.stored_by_reconcile
            }),
            (by("reconcile"), |c| c.stored_by_reconcile),
            (by("resweep"), |c| c.stored_by_resweep),
            (
                counter(
                    "synchronizer_events_duplicate_total",
                    "Events received that were already archived.",
                ),
                |c| c.duplicates,
            ),
            (
                counter(
                    "synchronizer_relations_stored_total",
                    "New (event, relay) provenance rows.",
                ),
                |c| c.relations,
            ),
            (
                counter(
                    "synchronizer_sightings_total",
                    "Provenance recorded by reconciliation for events archived already, without downloading them.",
                ),
                |c| c.sightings,
            ),
            (counter("synchronizer_requests_total", "REQs sent."), |c| c.requests),
            (
                counter(
                    "synchronizer_received_bytes_total",
                    "Bytes of the messages received from relays.",
                ),
                |c| c.bytes_received,
            ),
            (
                counter("synchronizer_windows_total", "Time windows completed."),
                |c| c.windows,
            ),
            (
                counter(
                    "synchronizer_pages_total",
                    "REQs paging further inside a window whose answer may have been cut short.",
                ),
                |c| c.pages,
            ),
            (
                counter(
                    "synchronizer_reconciliations_total",
                    "NIP-77 reconciliations completed.",
                ),
                |c| c.reconciliations,
            ),
            (
                counter(
                    "synchronizer_resweeps_total",
                    "Re-sweeps of the period behind a relay's cursor completed.",
                ),
                |c| c.resweeps,
            ),
            (
                counter(
                    "synchronizer_events_quarantined_total",
                    "Events the archive refused, isolated from their batch and recorded in quarantine.",
                ),
                |c| c.quarantined,
            ),
            (
                counter(
                    "synchronizer_pending_added_total",
                    "Ranges recorded as pending.",
                ),
                |c| c.pending_added,
            ),
            (
                counter(
                    "synchronizer_pending_resolved_total",
                    "Pending ranges retried and found complete.",
                ),
                |c| c.pending_resolved,
            ),
        ];
        Ok(Self {
            synchronizer,
            counters,
            pending: metrics.gauge(
                "synchronizer_pending_ranges",
                "Ranges of relays waiting for a retry because their events could not all be fetched.",
                &[],
            ),
            nip77: metrics.gauge(
                "synchronizer_nip77_relays",
                "Relays known to reconcile with NIP-77.",
                &[],
            ),
            max_lag: metrics.gauge(
                "synchronizer_max_lag_seconds",
                "How far behind now the most lagging relay of the last cycle is.",
                &[],
            ),
            lagging: metrics.gauge(
                "synchronizer_lagging_relays",
                "Relays of the last cycle left more than an hour behind now - end_lag.",
                &[],
            ),
        })
    }

    async fn loop_iteration(
        &mut self,
        ctx: &ServiceContext<SynchronizerFile>,
        cancel: &CancellationToken,
    ) -> anyhow::Result<()> {
        let report = self.synchronizer.run_cycle(ctx.brotr(), cancel).await?;
        self.record(ctx, &report);
        self.record_state(ctx).await?;
        let totals = &report.totals;
        tracing::info!(
            target: TARGET,
            service = %ctx.name(),
            relays = report.relays.len(),
            received = totals.received,
            stored = totals.stored,
            duplicates = totals.duplicates,
            relations = totals.relations,
            sightings = totals.sightings,
            requests = totals.requests,
            pending_added = totals.pending_added,
            cut_off = report.cut_off(),
            failed = report.failed(),
            max_lag = report.max_lag(),
            cancelled = report.cancelled,
            "synchronizer cycle done"
        );
        Ok(())
    }
}
