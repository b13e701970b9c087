//! [`MonitorService`]: the monitor as a service of the runtime, run with
//! `bigbrotr run monitor`.

use anyhow::Context as _;
use bigbrotr_service_runtime::{Counter, LoopService, ServiceContext};
use tokio_util::sync::CancellationToken;

use crate::checker::Monitor;
use crate::config::MonitorFile;
use crate::cycle::{CycleReport, NetworkReport};

const TARGET: &str = "bigbrotr::monitor";

/// The counters of one network.
#[derive(Debug)]
struct NetworkCounters {
    checked: Counter,
    connected: Counter,
    failed: Counter,
    stored: Counter,
}

impl NetworkCounters {
    fn new(ctx: &ServiceContext<MonitorFile>, network: &str) -> Self {
        let metrics = ctx.metrics();
        let labels = [("network", network)];
        Self {
            checked: metrics.counter("monitor_checks_total", "Relays checked.", &labels),
            connected: metrics.counter(
                "monitor_connected_total",
                "Checks whose WebSocket connection opened.",
                &labels,
            ),
            failed: metrics.counter(
                "monitor_failed_total",
                "Checks whose WebSocket connection did not open.",
                &labels,
            ),
            stored: metrics.counter(
                "monitor_stored_total",
                "Checks stored as relay_metadata rows, failures included.",
                &labels,
            ),
        }
    }

    fn add(&self, report: &NetworkReport) {
        self.checked.add(report.checked);
        self.connected.add(report.connected);
        self.failed.add(report.failed);
        self.stored.add(report.stored);
    }
}

/// The monitor service: each iteration is one [`Monitor::run_cycle`] over
/// the relays due for a check.
///
/// Its metrics, labelled with the service and `network` (`clearnet`,
/// `tor`): `bigbrotr_monitor_checks_total`, `bigbrotr_monitor_connected_total`,
/// `bigbrotr_monitor_failed_total`, `bigbrotr_monitor_stored_total`; and
/// `bigbrotr_monitor_published_total` (NIP-66 events accepted).
#[derive(Debug)]
pub struct MonitorService {
    monitor: Monitor,
    clearnet: NetworkCounters,
    tor: NetworkCounters,
    published: Counter,
}

impl MonitorService {
    /// The monitor it runs.
    #[must_use]
    pub fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    fn record(&self, report: &CycleReport) {
        self.clearnet.add(&report.clearnet);
        self.tor.add(&report.tor);
        self.published.add(report.published);
    }
}

impl LoopService for MonitorService {
    const NAME: &'static str = "monitor";
    type Config = MonitorFile;

    fn build(ctx: &ServiceContext<MonitorFile>) -> anyhow::Result<Self> {
        let config = ctx.config();
        let keys =
            bigbrotr_service_runtime::service_keys(ctx.env(), &config.monitor.keys_env, "monitor")
                .context("reading the monitor's key")?;
        let monitor = Monitor::new(&config.monitor, &config.nostr, keys)
            .context("setting the monitor up")?
            .with_egress(ctx.egress().clone());
        Ok(Self {
            monitor,
            clearnet: NetworkCounters::new(ctx, "clearnet"),
            tor: NetworkCounters::new(ctx, "tor"),
            published: ctx.metrics().counter(
                "monitor_published_total",
                "NIP-66 events a publishing relay accepted.",
                &[],
            ),
        })
    }

    async fn loop_iteration(
        &mut self,
        ctx: &ServiceContext<MonitorFile>,
        cancel: &CancellationToken,
    ) -> anyhow::Result<()> {
        let report = self.monitor.run_cycle(ctx.brotr(), cancel).await?;
        self.record(&report);
        tracing::info!(
            target: TARGET,
            service = %ctx.name(),
            due = report.clearnet.due + report.tor.due,
            checked = report.clearnet.checked + report.tor.checked,
            connected = report.clearnet.connected + report.tor.connected,
            failed = report.clearnet.failed + report.tor.failed,
            stored = report.clearnet.stored + report.tor.stored,
            published = report.published,
            cancelled = report.cancelled,
            "monitor cycle done"
        );
        Ok(())
    }
}
