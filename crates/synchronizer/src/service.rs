//! [`SynchronizerService`]: the synchronizer as a service of the runtime,
//! run with `bigbrotr run synchronizer`.

use bigbrotr_config::{LoopConfig, NostrConfig, ServiceConfig};
use bigbrotr_service_runtime::{Counter, Gauge, LoopService, ServiceContext, ServiceFile};
use tokio_util::sync::CancellationToken;

use crate::config::SynchronizerFile;
use crate::report::{CycleReport, RelayOutcome};
use crate::synchronizer::Synchronizer;

const TARGET: &str = "bigbrotr::synchronizer";

impl ServiceFile for SynchronizerFile {
    fn service(&self) -> &ServiceConfig {
        &self.service
    }
    fn loop_config(&self) -> &LoopConfig {
        &self.loop_
    }
    fn loop_config_mut(&mut self) -> &mut LoopConfig {
        &mut self.loop_
    }
    fn nostr(&self) -> &NostrConfig {
        &self.nostr
    }
}

/// The synchronizer service: each iteration is one
/// [`Synchronizer::run_cycle`] over the relays it can claim.
///
/// Its metrics, labelled with the service: `bigbrotr_synchronizer_events_received_total`,
/// `_events_stored_total`, `_events_duplicate_total`, `_relations_stored_total`,
/// `_events_rejected_total` (with `reason`), `_windows_total`,
/// `_bisections_total`, `_incomplete_seconds_total`, `_relays_total` (with
/// `outcome`), and the gauges `_relay_lag_seconds` (with `relay`: how far
/// behind its cursor was when the relay was last synced; one series per
/// relay ever synced, so bounded by the number of relays) and
/// `_max_lag_seconds` (the most lagging relay of the last cycle).
#[derive(Debug)]
pub struct SynchronizerService {
    synchronizer: Synchronizer,
    received: Counter,
    stored: Counter,
    duplicates: Counter,
    relations: Counter,
    windows: Counter,
    bisections: Counter,
    incomplete: Counter,
    max_lag: Gauge,
}

impl SynchronizerService {
    /// The synchronizer it runs.
    #[must_use]
    pub fn synchronizer(&self) -> &Synchronizer {
        &self.synchronizer
    }

    fn record(&self, ctx: &ServiceContext<SynchronizerFile>, report: &CycleReport) {
        let totals = &report.totals;
        self.received.add(totals.received);
        self.stored.add(totals.stored);
        self.duplicates.add(totals.duplicates);
        self.relations.add(totals.relations);
        self.windows.add(totals.windows);
        self.bisections.add(totals.bisections);
        self.incomplete.add(totals.incomplete_seconds);
        let rejected = &totals.rejected;
        for (reason, count) in [
            ("invalid_id", rejected.invalid_id),
            ("invalid_signature", rejected.invalid_signature),
            ("out_of_range", rejected.out_of_range),
            ("outside_window", rejected.outside_window),
            ("filter_mismatch", rejected.filter_mismatch),
            ("repeated", rejected.repeated),
            ("malformed", rejected.malformed),
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
            if let Some(lag) = relay.lag {
                ctx.metrics()
                    .gauge(
                        "synchronizer_relay_lag_seconds",
                        "How far behind now - end_lag a relay's cursor was when it was last synced.",
                        &[("relay", relay.url.as_str())],
                    )
                    .set(lag as f64);
            }
        }
        if let Some(lag) = report.max_lag() {
            self.max_lag.set(lag as f64);
        }
    }
}

impl LoopService for SynchronizerService {
    const NAME: &'static str = "synchronizer";
    type Config = SynchronizerFile;

    fn build(ctx: &ServiceContext<SynchronizerFile>) -> anyhow::Result<Self> {
        let config = ctx.config();
        let synchronizer = Synchronizer::new(&config.synchronizer, &config.nostr)?;
        let metrics = ctx.metrics();
        let counter = |name: &str, help: &str| metrics.counter(name, help, &[]);
        Ok(Self {
            synchronizer,
            received: counter(
                "synchronizer_events_received_total",
                "Events received from relays.",
            ),
            stored: counter("synchronizer_events_stored_total", "Events newly archived."),
            duplicates: counter(
                "synchronizer_events_duplicate_total",
                "Events received that were already archived.",
            ),
            relations: counter(
                "synchronizer_relations_stored_total",
                "New (event, relay) provenance rows.",
            ),
            windows: counter("synchronizer_windows_total", "Time windows requested."),
            bisections: counter(
                "synchronizer_bisections_total",
                "Windows split because they came back full.",
            ),
            incomplete: counter(
                "synchronizer_incomplete_seconds_total",
                "Single seconds holding more events than could be fetched.",
            ),
            max_lag: metrics.gauge(
                "synchronizer_max_lag_seconds",
                "How far behind now the most lagging relay of the last cycle is.",
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
        let totals = &report.totals;
        tracing::info!(
            target: TARGET,
            service = %ctx.name(),
            relays = report.relays.len(),
            received = totals.received,
            stored = totals.stored,
            duplicates = totals.duplicates,
            relations = totals.relations,
            cut_off = report.cut_off(),
            failed = report.failed(),
            max_lag = report.max_lag(),
            cancelled = report.cancelled,
            "synchronizer cycle done"
        );
        Ok(())
    }
}
