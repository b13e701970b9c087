//! [`FinderService`]: the finder as a service of the runtime, run with
//! `bigbrotr run finder`.

use bigbrotr_service_runtime::{Counter, LoopService, ServiceContext};
use tokio_util::sync::CancellationToken;

use crate::config::FinderFile;
use crate::cycle::CycleReport;
use crate::scanner::Finder;

const TARGET: &str = "bigbrotr::finder";

/// The finder service: each iteration is one [`Finder::run_cycle`].
///
/// Its metrics, labelled with the service: `bigbrotr_finder_sightings_total`
/// (events read), `bigbrotr_finder_candidates_total` (URLs found),
/// `bigbrotr_finder_new_relays_total`, `bigbrotr_finder_rejected_total`
/// (with `reason`) and `bigbrotr_finder_http_failures_total`.
#[derive(Debug)]
pub struct FinderService {
    finder: Finder,
    sightings: Counter,
    candidates: Counter,
    new: Counter,
    http_failures: Counter,
}

impl FinderService {
    /// The finder it runs.
    #[must_use]
    pub fn finder(&self) -> &Finder {
        &self.finder
    }

    fn record(&self, ctx: &ServiceContext<FinderFile>, report: &CycleReport) {
        self.sightings.add(report.sightings);
        self.candidates.add(report.candidates);
        self.new.add(report.new);
        self.http_failures.add(report.http_failures);
        for (reason, count) in &report.rejected {
            ctx.metrics()
                .counter(
                    "finder_rejected_total",
                    "Candidate URLs refused, by reason.",
                    &[("reason", reason.as_str())],
                )
                .add(*count);
        }
    }
}

impl LoopService for FinderService {
    const NAME: &'static str = "finder";
    type Config = FinderFile;

    fn build(ctx: &ServiceContext<FinderFile>) -> anyhow::Result<Self> {
        let finder =
            Finder::new(ctx.name(), &ctx.config().finder)?.with_egress(ctx.egress().clone());
        let metrics = ctx.metrics();
        Ok(Self {
            finder,
            sightings: metrics.counter(
                "finder_sightings_total",
                "Archived events read for relay URLs.",
                &[],
            ),
            candidates: metrics.counter(
                "finder_candidates_total",
                "Relay URLs found, valid or not, repeats included.",
                &[],
            ),
            new: metrics.counter(
                "finder_new_relays_total",
                "Relays added to the archive.",
                &[],
            ),
            http_failures: metrics.counter(
                "finder_http_failures_total",
                "HTTP sources that could not be read.",
                &[],
            ),
        })
    }

    async fn loop_iteration(
        &mut self,
        ctx: &ServiceContext<FinderFile>,
        cancel: &CancellationToken,
    ) -> anyhow::Result<()> {
        let report = self.finder.run_cycle(ctx.brotr(), cancel).await?;
        self.record(ctx, &report);
        tracing::info!(
            target: TARGET,
            service = %ctx.name(),
            sightings = report.sightings,
            candidates = report.candidates,
            new = report.new,
            rejected = report.rejected_total(),
            http_failures = report.http_failures,
            cancelled = report.cancelled,
            "finder cycle done"
        );
        Ok(())
    }
}
